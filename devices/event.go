package devices

import (
	"errors"
	"fmt"
	"strconv"
)

// Label names a WebSocket event, as in {"device":…,"label":…,"value":…}.
type Label uint8

// The event labels of the contract.
const (
	LabelLED     Label = iota + 1 // "ledStatus", value "LED ON" or "LED OFF"
	LabelCount                    // "count", value a JSON number
	LabelOnline                   // "online", value true or false
	LabelInfo                     // "info", value the board's info object
	LabelRemoved                  // "removed", value true: the board was forgotten
	LabelError                    // "error", value a message; to one browser only
	LabelCommand                  // "command", value {"id","command","state"}: a tracked command changed state
	LabelUpdate                   // "update", value the board's update report (v2)
	LabelMeta                     // "meta", value {"name","tags"}: the name to show and the tags (v2)
)

// String returns the label as it appears on the wire.
func (l Label) String() string {
	switch l {
	case LabelLED:
		return "ledStatus"
	case LabelCount:
		return "count"
	case LabelOnline:
		return "online"
	case LabelInfo:
		return "info"
	case LabelRemoved:
		return "removed"
	case LabelError:
		return "error"
	case LabelCommand:
		return "command"
	case LabelUpdate:
		return "update"
	case LabelMeta:
		return "meta"
	}
	return "unknown"
}

// Event is one WebSocket event. Which value field is used depends on Label:
// On for LabelLED and LabelOnline, Count for LabelCount, Info for LabelInfo,
// LabelUpdate and LabelMeta (a valid JSON object), Message for LabelError,
// CommandID, Command and Message (the state) for LabelCommand.
type Event struct {
	Device    string // empty only for an error not about a device
	Label     Label
	On        bool
	Count     int64
	Info      []byte
	Message   string
	CommandID string
	Command   Command
}

// AppendJSON appends e in the /ws dialect:
// {"device":"<id>","label":"<label>","value":<value>}.
func (e Event) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	if e.Device != "" {
		b = append(b, `"device":`...)
		b = AppendJSONString(b, e.Device)
		b = append(b, ',')
	}
	return e.appendLabelValue(b)
}

// AppendSingle appends e in the /ws/<id> dialect (the seed tutorial's):
// {"label":"<label>","value":<value>}, without the device.
func (e Event) AppendSingle(b []byte) []byte {
	b = append(b, '{')
	return e.appendLabelValue(b)
}

// SingleBoard reports whether e is part of the /ws/<id> dialect, which
// carries only ledStatus, count and error.
func (e Event) SingleBoard() bool {
	return e.Label == LabelLED || e.Label == LabelCount || e.Label == LabelError
}

func (e Event) appendLabelValue(b []byte) []byte {
	b = append(b, `"label":"`...)
	b = append(b, e.Label.String()...)
	b = append(b, `","value":`...)
	switch e.Label {
	case LabelLED:
		if e.On {
			b = append(b, `"LED ON"`...)
		} else {
			b = append(b, `"LED OFF"`...)
		}
	case LabelCount:
		b = strconv.AppendInt(b, e.Count, 10)
	case LabelOnline:
		b = strconv.AppendBool(b, e.On)
	case LabelInfo, LabelUpdate, LabelMeta:
		if len(e.Info) == 0 {
			b = append(b, "{}"...)
		} else {
			b = append(b, e.Info...)
		}
	case LabelRemoved:
		b = append(b, "true"...)
	case LabelCommand:
		b = append(b, `{"id":`...)
		b = AppendJSONString(b, e.CommandID)
		b = append(b, `,"command":"`...)
		b = append(b, e.Command.Payload()...)
		b = append(b, `","state":`...)
		b = AppendJSONString(b, e.Message)
		b = append(b, '}')
	default:
		b = AppendJSONString(b, e.Message)
	}
	return append(b, '}')
}

// ErrorEvent returns an error event for one browser; device may be empty.
func ErrorEvent(device string, err error) Event {
	return Event{Device: device, Label: LabelError, Message: err.Error()}
}

// ErrBadMessage is wrapped by every browser message parsing error.
var ErrBadMessage = errors.New("bad message")

// MaxBrowserMessage is the largest browser message the gateway reads; a
// larger one closes the connection with code 1009.
const MaxBrowserMessage = 4096

// Target is what a browser command is for: one board (Device), a group of
// boards (Group, "all" being every one) or the boards with a tag (Tag).
// Exactly one is set.
type Target struct {
	Device, Group, Tag string
}

// ParseBrowserMessage parses a /ws browser message,
// {"device":"<id>","action":"toggle"|"on"|"off"} (action in any case),
// {"group":"<name>","action":…} for a group of boards ("all": every one)
// or {"tag":"<tag>","action":…} for the boards with a tag, and returns the
// target and the command. A message names exactly one of device, group
// and tag. On error, the target's Device is the device named in the
// message if there was a valid one, so the answer can carry it.
func ParseBrowserMessage(b []byte) (Target, Command, error) {
	fields, err := scanObject(b)
	if err != nil {
		return Target{}, CmdNone, fmt.Errorf("%w: %v; want {\"device\":\"<id>\",\"action\":\"toggle\"}", ErrBadMessage, err)
	}
	dev, hasDev := fields["device"]
	group, hasGroup := fields["group"]
	tag, hasTag := fields["tag"]
	action, hasAction := fields["action"]
	var t Target
	switch n := btoi(hasDev) + btoi(hasGroup) + btoi(hasTag); {
	case n == 0:
		return Target{}, CmdNone, fmt.Errorf(`%w: missing "device" (a string)`, ErrBadMessage)
	case n > 1:
		return Target{}, CmdNone, fmt.Errorf(`%w: name one of "device", "group" and "tag", not several`, ErrBadMessage)
	case hasGroup:
		if group == "" || len(group) > MaxIDLen {
			return Target{}, CmdNone, fmt.Errorf(`%w: "group" must be 1 to %d characters`, ErrBadMessage, MaxIDLen)
		}
		t.Group = group
	case hasTag:
		if err := ValidateTag(tag); err != nil {
			return Target{}, CmdNone, fmt.Errorf(`%w: "tag": %w`, ErrBadMessage, err)
		}
		t.Tag = tag
	default:
		if err := ValidateID(dev); err != nil {
			return Target{}, CmdNone, fmt.Errorf("%w: %w", ErrBadMessage, err)
		}
		t.Device = dev
	}
	if !hasAction {
		return t, CmdNone, fmt.Errorf(`%w: missing "action" (toggle, on or off)`, ErrBadMessage)
	}
	cmd, err := ParseAction(action)
	if err != nil {
		return t, CmdNone, err
	}
	return t, cmd, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ParseAction parses a browser action or /ws/<id> text: toggle, on or off
// in any case (no surrounding white space trimmed beyond ParseCommand's).
func ParseAction(s string) (Command, error) {
	cmd, err := ParseCommand([]byte(s))
	if err != nil {
		if len(s) > maxQuoted {
			s = s[:maxQuoted] + "..."
		}
		return CmdNone, fmt.Errorf("%w: unknown action %q: want toggle, on or off", ErrBadMessage, s)
	}
	return cmd, nil
}
