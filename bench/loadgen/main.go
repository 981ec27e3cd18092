// Command loadgen is the benchmark's traffic side, in Go so that it costs little CPU next
// to the stack it measures on a 2-core machine:
//
//	loadgen send     open-loop (or, with -rate 0, closed-loop as fast as possible) POSTs
//	                 of Open311 reports or Alertmanager alerts to 127.0.0.1, one line per
//	                 request (schedule, send and answer times, status, id) in a TSV file
//	loadgen receive  the webhook receiver: verifies Gridline's Standard Webhooks signature,
//	                 accepts Alertmanager's webhook too, and serves what arrived, when
//
// The Python driver (bench/run.py) starts both, reads their output and writes the figures.
// Standard library only.
package main

import (
	"fmt"
	"net"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen send|receive [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "send":
		err = send(os.Args[2:])
	case "receive":
		err = receive(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (send or receive)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// loopbackOnly refuses any address that is not 127.0.0.1: the bench never sends elsewhere.
func loopbackOnly(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return err
	}
	if host != "127.0.0.1" {
		return fmt.Errorf("only 127.0.0.1 is allowed, got %q", host)
	}
	return nil
}
