-- Every order's insert and every move wrote an entry in each of work_orders' indexes; two
-- of the queries' indexes (0006) did little the others do not: a state or category filter
-- is a filter on the due-time scan (by_due) or on a unit's (by_unit_due), and the states
-- are few. Fewer index writes per order, measured in make bench (docs/benchmarks.md).
DROP INDEX work_orders_by_state_due;
DROP INDEX work_orders_by_category_due;
