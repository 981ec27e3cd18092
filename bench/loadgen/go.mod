module gridline.local/bench/loadgen

go 1.26
