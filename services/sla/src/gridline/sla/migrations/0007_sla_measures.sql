-- The rest of the measurement, kept incrementally like `tallies` (0005): each table is
-- moved in the transaction of the events it counts, and every question reads a bounded
-- range of its primary key (one scope's or one ranking's days).

-- Work-order events already counted, by their natural identity (an order's version), so
-- that an event redelivered even under another event id moves nothing twice.
CREATE TABLE measured (
    work_order_id  text    NOT NULL,
    version        integer NOT NULL,
    PRIMARY KEY (work_order_id, version)
);

-- domain/flows.py Flow: per scope, category and local day of each event.
CREATE TABLE flows (
    scope         text    NOT NULL,
    category      text    NOT NULL,
    day           date    NOT NULL,
    opened        integer NOT NULL,
    discovered    integer NOT NULL,  -- opened from a grid worker's patrol
    timeout       integer NOT NULL,  -- escalations by reason
    whistle       integer NOT NULL,
    rule          integer NOT NULL,
    reopened      integer NOT NULL,
    feedbacks     integer NOT NULL,
    satisfaction  integer NOT NULL,  -- summed 1..5
    satisfied     integer NOT NULL,  -- feedbacks of 4 or 5
    PRIMARY KEY (scope, category, day)
);

-- domain/flows.py TierTally: per scope, category, local day and resolver tier; `buckets`
-- holds the time to resolve in domain/percentiles.py's fixed, log-spaced buckets.
CREATE TABLE tier_tallies (
    scope     text      NOT NULL,
    category  text      NOT NULL,
    day       date      NOT NULL,
    tier      text      NOT NULL,
    resolved  integer   NOT NULL,
    timed     integer   NOT NULL,
    on_time   integer   NOT NULL,
    reopened  integer   NOT NULL,
    buckets   integer[] NOT NULL,
    PRIMARY KEY (scope, category, day, tier)
);

-- domain/assessment.py UnitTally: per ranking (parent scope, level of its units), day, unit.
CREATE TABLE unit_tallies (
    parent            text    NOT NULL,
    level             text    NOT NULL,
    day               date    NOT NULL,
    unit              text    NOT NULL,
    discovered        integer NOT NULL,
    completed         integer NOT NULL,
    timed             integer NOT NULL,
    on_time           integer NOT NULL,
    reopened          integer NOT NULL,
    calls             integer NOT NULL,
    reported_on_time  integer NOT NULL,
    returns           integer NOT NULL,
    PRIMARY KEY (parent, level, day, unit)
);

-- Reporters' feedback, one row each: counted once its work order's resolution is known
-- (it may arrive first: another topic), in the scopes of that resolution's place.
CREATE TABLE feedbacks (
    feedback_id    text     PRIMARY KEY,
    work_order_id  text     NOT NULL,
    satisfaction   smallint NOT NULL,
    outcome        text     NOT NULL,
    day            date     NOT NULL,
    counted        boolean  NOT NULL DEFAULT false
);
CREATE INDEX feedbacks_pending ON feedbacks (work_order_id) WHERE NOT counted;

-- Unit names for reports: from the jurisdiction's places and the assignments seen.
CREATE TABLE unit_names (
    unit     text PRIMARY KEY,  -- grid:<id>, community:<id>, street:<id>, department:<id>, ...
    name_zh  text,
    name_en  text
);
