//go:build !linux || tinygo

package gpio

import "fmt"

// LED is unavailable here: GPIO needs Linux and the standard Go toolchain.
type LED struct{}

// Open always fails outside Linux.
func Open(spec Spec, activeLow bool, consumer string) (*LED, error) {
	return nil, fmt.Errorf("open %s: GPIO LEDs need Linux (the GPIO character device)", spec)
}

// Set always fails.
func (*LED) Set(bool) error { return fmt.Errorf("gpio: not supported on this platform") }

// Close does nothing.
func (*LED) Close() error { return nil }
