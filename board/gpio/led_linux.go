//go:build linux && !tinygo

package gpio

import (
	"fmt"
	"sync"

	"github.com/warthog618/go-gpiocdev"
)

// LED is an LED on a GPIO line, requested as an output. It implements
// board.LED.
type LED struct {
	mu   sync.Mutex
	line *gpiocdev.Line // nil once closed
	spec Spec
}

// Open requests the line of spec as an output, initially off. With
// activeLow the line is driven low for on (an LED wired to the supply, as
// the ESP32-CAM's). consumer labels the line for tools such as gpioinfo.
func Open(spec Spec, activeLow bool, consumer string) (*LED, error) {
	chip, offset := spec.Chip, spec.Offset
	if spec.Name != "" {
		var err error
		if chip, offset, err = gpiocdev.FindLine(spec.Name); err != nil {
			return nil, fmt.Errorf("open %s: find line %q: %w", spec, spec.Name, err)
		}
	}
	opts := []gpiocdev.LineReqOption{gpiocdev.AsOutput(0), gpiocdev.WithConsumer(consumer)}
	if activeLow {
		opts = append(opts, gpiocdev.AsActiveLow)
	}
	line, err := gpiocdev.RequestLine(chip, offset, opts...)
	if err != nil {
		return nil, fmt.Errorf("open %s (%s line %d): %w", spec, chip, offset, err)
	}
	return &LED{line: line, spec: spec}, nil
}

// Set drives the line: active for on.
func (l *LED) Set(on bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.line == nil {
		return fmt.Errorf("set %s: closed", l.spec)
	}
	v := 0
	if on {
		v = 1
	}
	if err := l.line.SetValue(v); err != nil {
		return fmt.Errorf("set %s: %w", l.spec, err)
	}
	return nil
}

// Close releases the line; it is idempotent.
func (l *LED) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.line == nil {
		return nil
	}
	err := l.line.Close()
	l.line = nil
	if err != nil {
		return fmt.Errorf("close %s: %w", l.spec, err)
	}
	return nil
}
