// Command crash is a "new build" for the update tests that exits at once
// with status 3, as a build that crashes at start would.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "crash: exiting at start, as a broken build would")
	os.Exit(3)
}
