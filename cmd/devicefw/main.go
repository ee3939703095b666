// Command devicefw is the Switchyard board firmware for hosts with the full
// Go runtime: a Linux board (LED on a GPIO line), or any number of
// simulated boards in one process. `devicefw check` verifies a live board
// against the wire contract. See docs/devicefw.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
