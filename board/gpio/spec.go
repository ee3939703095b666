// Package gpio drives a board's LED through the Linux GPIO character device
// (/dev/gpiochipN) with github.com/warthog618/go-gpiocdev, which is pure Go:
// devicefw cross-compiles for Raspberry Pi-class boards with CGO_ENABLED=0.
//
// Spec parsing builds everywhere; the hardware part builds only for Linux
// with the standard Go toolchain (not TinyGo, which also sets "linux").
package gpio

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Spec names one GPIO line, either by its line name (Name, as "GPIO17" on a
// Raspberry Pi, looked up on every chip) or by chip and offset.
type Spec struct {
	Name   string // line name; empty when Chip is set
	Chip   string // "gpiochip0" or "/dev/gpiochip0"
	Offset int
}

// ErrBadSpec is wrapped by every ParseSpec error.
var ErrBadSpec = errors.New("invalid --led")

const usage = "want gpio:<line name> (gpio:GPIO17) or gpio:<chip>:<offset> (gpio:gpiochip0:17)"

// ParseSpec parses the value of --led for a GPIO LED: "gpio:GPIO17" (a line
// name) or "gpio:gpiochip0:17" (chip and line offset).
func ParseSpec(s string) (Spec, error) {
	rest, ok := strings.CutPrefix(s, "gpio:")
	if !ok || rest == "" {
		return Spec{}, fmt.Errorf("%w %q: %s", ErrBadSpec, s, usage)
	}
	chip, off, hasOffset := strings.Cut(rest, ":")
	if !hasOffset {
		if _, err := strconv.Atoi(rest); err == nil {
			return Spec{}, fmt.Errorf("%w %q: a bare number is ambiguous; %s", ErrBadSpec, s, usage)
		}
		if strings.ContainsAny(rest, " \t/") {
			return Spec{}, fmt.Errorf("%w %q: %s", ErrBadSpec, s, usage)
		}
		return Spec{Name: rest}, nil
	}
	if name := strings.TrimPrefix(chip, "/dev/"); !strings.HasPrefix(name, "gpiochip") || len(name) == len("gpiochip") {
		return Spec{}, fmt.Errorf("%w %q: chip %q is not gpiochipN; %s", ErrBadSpec, s, chip, usage)
	}
	n, err := strconv.Atoi(off)
	if err != nil || n < 0 {
		return Spec{}, fmt.Errorf("%w %q: offset %q is not a non-negative number; %s", ErrBadSpec, s, off, usage)
	}
	return Spec{Chip: chip, Offset: n}, nil
}

// String returns the spec as ParseSpec reads it.
func (s Spec) String() string {
	if s.Name != "" {
		return "gpio:" + s.Name
	}
	return "gpio:" + s.Chip + ":" + strconv.Itoa(s.Offset)
}
