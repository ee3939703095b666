package gpio_test

import (
	"errors"
	"testing"

	"switchyard/board/gpio"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		in   string
		want gpio.Spec
		bad  bool
	}{
		{in: "gpio:GPIO17", want: gpio.Spec{Name: "GPIO17"}},
		{in: "gpio:LED0", want: gpio.Spec{Name: "LED0"}},
		{in: "gpio:gpiochip0:17", want: gpio.Spec{Chip: "gpiochip0", Offset: 17}},
		{in: "gpio:/dev/gpiochip4:0", want: gpio.Spec{Chip: "/dev/gpiochip4", Offset: 0}},
		{in: "gpio:", bad: true},
		{in: "GPIO17", bad: true},
		{in: "gpio:17", bad: true},
		{in: "gpio:gpiochip0:", bad: true},
		{in: "gpio:gpiochip0:-1", bad: true},
		{in: "gpio:gpiochip0:x", bad: true},
		{in: "gpio:chip0:1", bad: true},
		{in: "gpio:gpiochip:1", bad: true},
		{in: "gpio:a b", bad: true},
	}
	for _, tt := range tests {
		got, err := gpio.ParseSpec(tt.in)
		if tt.bad {
			if !errors.Is(err, gpio.ErrBadSpec) {
				t.Errorf("ParseSpec(%q): got %+v, %v; want an ErrBadSpec", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSpec(%q): got %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
		if s := got.String(); s != tt.in {
			t.Errorf("String of ParseSpec(%q): got %q", tt.in, s)
		}
	}
}

func TestOpenWithoutHardware(t *testing.T) {
	// No gpiochip here: Open must fail with an error, not panic. The
	// hardware path itself can only be tested on a board.
	if _, err := gpio.Open(gpio.Spec{Chip: "gpiochip99", Offset: 0}, false, "test"); err == nil {
		t.Error("Open of a missing chip: got nil error")
	}
}
