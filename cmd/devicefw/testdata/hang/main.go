// Command hang is a "new build" for the update tests that never connects
// to the broker: it ignores its arguments and waits until it is killed.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	fmt.Fprintln(os.Stderr, "hang: never connecting, waiting to be killed")
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT) // a hung build does not stop when asked
	for {
		time.Sleep(time.Hour)
	}
}
