// Package machine is the part of TinyGo's machine package (src/machine,
// esp32c3 and esp32s3) that main.go uses, for apicheck only: TinyGo's own
// package is built into the compiler and is not a Go module.
package machine

// Pin is a GPIO pin number (machine.go: type Pin uint8).
type Pin uint8

// PinMode is how a pin is configured.
type PinMode uint8

// PinConfig configures a pin.
type PinConfig struct {
	Mode PinMode
}

// The pin modes of machine_esp32c3.go.
const (
	PinOutput PinMode = iota
	PinInput
	PinInputPullup
	PinInputPulldown
)

// Configure sets the pin's mode.
func (p Pin) Configure(config PinConfig) {}

// Set drives an output pin high or low.
func (p Pin) Set(value bool) {}
