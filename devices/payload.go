package devices

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Command is what a led/set message or a browser action asks a board to do.
type Command uint8

// The commands of the contract.
const (
	CmdNone Command = iota
	CmdOn
	CmdOff
	CmdToggle
)

// Payload returns the led/set payload for c: "ON", "OFF" or "TOGGLE".
func (c Command) Payload() string {
	switch c {
	case CmdOn:
		return "ON"
	case CmdOff:
		return "OFF"
	case CmdToggle:
		return "TOGGLE"
	}
	return ""
}

// String returns Payload.
func (c Command) String() string { return c.Payload() }

// Apply returns the LED state after c is applied to a LED that is on.
func (c Command) Apply(on bool) bool {
	switch c {
	case CmdOn:
		return true
	case CmdOff:
		return false
	case CmdToggle:
		return !on
	}
	return on
}

// ErrBadPayload is wrapped by every payload parsing error.
var ErrBadPayload = errors.New("bad payload")

// maxQuoted bounds how much of a bad payload an error message repeats.
const maxQuoted = 32

func badPayload(what string, p []byte) error {
	if len(p) > maxQuoted {
		return fmt.Errorf("%w: %s: %q... (%d bytes)", ErrBadPayload, what, p[:maxQuoted], len(p))
	}
	return fmt.Errorf("%w: %s: %q", ErrBadPayload, what, p)
}

// ParseCommand parses a led/set payload or a browser action: ON, OFF or
// TOGGLE in any case, surrounding white space ignored.
func ParseCommand(p []byte) (Command, error) {
	s := strings.TrimSpace(string(p))
	switch {
	case strings.EqualFold(s, "toggle"):
		return CmdToggle, nil
	case strings.EqualFold(s, "on"):
		return CmdOn, nil
	case strings.EqualFold(s, "off"):
		return CmdOff, nil
	}
	return CmdNone, badPayload("want ON, OFF or TOGGLE", p)
}

// ParseLED parses a led payload: ON or OFF (any case).
func ParseLED(p []byte) (on bool, err error) {
	s := strings.TrimSpace(string(p))
	switch {
	case strings.EqualFold(s, "on"):
		return true, nil
	case strings.EqualFold(s, "off"):
		return false, nil
	}
	return false, badPayload("led: want ON or OFF", p)
}

// LEDPayload returns the led payload for a state: "ON" or "OFF".
func LEDPayload(on bool) string {
	if on {
		return "ON"
	}
	return "OFF"
}

// Status payloads.
const (
	Online  = "online"
	Offline = "offline"
)

// ParseStatus parses a status payload: online or offline (any case).
func ParseStatus(p []byte) (online bool, err error) {
	s := strings.TrimSpace(string(p))
	switch {
	case strings.EqualFold(s, Online):
		return true, nil
	case strings.EqualFold(s, Offline):
		return false, nil
	}
	return false, badPayload("status: want online or offline", p)
}

// ParseCount parses a count payload: a non-negative decimal integer in ASCII.
func ParseCount(p []byte) (int64, error) {
	s := strings.TrimSpace(string(p))
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, badPayload("count: want a non-negative decimal integer", p)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, badPayload("count: want a non-negative decimal integer", p)
	}
	return n, nil
}

// Info is what a board says about itself in P/<id>/info. Raw is the whole
// object as received (valid JSON, surrounding white space trimmed); the
// other fields are its well-known string members, empty when absent.
type Info struct {
	Raw      []byte
	ID       string
	Name     string
	Firmware string
	Board    string
	IP       string
	Platform string // "linux/arm64", "sim", "esp32c3", … (v2)
	Update   string // the update method ("binary", "sim"); empty: the board cannot update (v2)
	// IntervalMS is how often the board counts, from "interval_ms"; 0 when
	// unknown (missing, not a positive whole number).
	IntervalMS int64
}

// MaxInfoSize bounds an info payload.
const MaxInfoSize = 4096

// ParseInfo parses an info payload: a JSON object. String members id, name,
// firmware, board, ip, platform and update and the number interval_ms are
// extracted; the whole object is kept in Raw.
func ParseInfo(p []byte) (Info, error) {
	if len(p) > MaxInfoSize {
		return Info{}, badPayload(fmt.Sprintf("info: larger than %d bytes", MaxInfoSize), p)
	}
	raw := trimSpaceBytes(p)
	fields, nums, err := scanObjectNumbers(raw)
	if err != nil {
		return Info{}, fmt.Errorf("%w: info: %v", ErrBadPayload, err)
	}
	interval, err := strconv.ParseInt(nums["interval_ms"], 10, 64)
	if err != nil || interval < 0 {
		interval = 0 // unknown: a board's info is shown whatever it says
	}
	return Info{
		IntervalMS: interval,
		Raw:        append([]byte(nil), raw...),
		ID:         fields["id"],
		Name:       fields["name"],
		Firmware:   fields["firmware"],
		Board:      fields["board"],
		IP:         fields["ip"],
		Platform:   fields["platform"],
		Update:     fields["update"],
	}, nil
}

// AppendInfo appends a board's info object without platform and update:
// BoardInfo{…}.AppendJSON.
func AppendInfo(b []byte, id, firmware, board, name, ip string, intervalMS int64) []byte {
	return BoardInfo{ID: id, Firmware: firmware, Board: board, Name: name, IP: ip, IntervalMS: intervalMS}.AppendJSON(b)
}

// BoardInfo is what a board announces in P/<id>/info.
type BoardInfo struct {
	ID, Firmware, Board string
	Name, IP            string // optional
	IntervalMS          int64  // optional
	Platform            string // optional: "linux/amd64", "sim", …
	Update              string // optional: the update method; empty when the board cannot update
}

// AppendJSON appends the info object, formatted by hand:
// {"id":…,"firmware":…,"board":…[,"name":…][,"ip":…][,"interval_ms":…][,"platform":…][,"update":…]}.
// Empty strings and a zero IntervalMS are left out.
func (i BoardInfo) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = AppendJSONString(b, i.ID)
	b = append(b, `,"firmware":`...)
	b = AppendJSONString(b, i.Firmware)
	b = append(b, `,"board":`...)
	b = AppendJSONString(b, i.Board)
	for _, f := range [...]struct{ key, v string }{{"name", i.Name}, {"ip", i.IP}} {
		if f.v != "" {
			b = append(b, `,"`+f.key+`":`...)
			b = AppendJSONString(b, f.v)
		}
	}
	if i.IntervalMS > 0 {
		b = append(b, `,"interval_ms":`...)
		b = strconv.AppendInt(b, i.IntervalMS, 10)
	}
	for _, f := range [...]struct{ key, v string }{{"platform", i.Platform}, {"update", i.Update}} {
		if f.v != "" {
			b = append(b, `,"`+f.key+`":`...)
			b = AppendJSONString(b, f.v)
		}
	}
	return append(b, '}')
}

func trimSpaceBytes(p []byte) []byte {
	for len(p) > 0 && isSpace(p[0]) {
		p = p[1:]
	}
	for len(p) > 0 && isSpace(p[len(p)-1]) {
		p = p[:len(p)-1]
	}
	return p
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
