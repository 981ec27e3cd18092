-- The admin key lists every open order, soonest due first (the city's whole queue).

CREATE INDEX work_orders_open_by_due ON work_orders (due_at NULLS LAST, id) WHERE state <> 'resolved';
