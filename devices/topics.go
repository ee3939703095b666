package devices

import (
	"errors"
	"fmt"
	"strings"
)

// This file is the only place that builds or splits topic strings.

// DefaultPrefix is the topic prefix P when none is configured.
const DefaultPrefix = "devices"

// Kind names what a topic under P/<id>/ carries.
type Kind uint8

// The topic kinds of the contract.
const (
	KindUnknown Kind = iota
	KindStatus       // P/<id>/status: online/offline, retained, published by the board
	KindLED          // P/<id>/led: ON/OFF, retained, published by the board
	KindCount        // P/<id>/count: decimal counter, published by the board
	KindInfo         // P/<id>/info: JSON object, retained, published by the board
	KindLEDSet       // P/<id>/led/set: ON/OFF/TOGGLE command to the board
)

// String returns the topic suffix of k ("status", "led/set", ...).
func (k Kind) String() string {
	switch k {
	case KindStatus:
		return "status"
	case KindLED:
		return "led"
	case KindCount:
		return "count"
	case KindInfo:
		return "info"
	case KindLEDSet:
		return "led/set"
	}
	return "unknown"
}

// FromBoard reports whether a board publishes topics of kind k (and so
// whether a message on it makes the board known).
func (k Kind) FromBoard() bool {
	return k >= KindStatus && k <= KindInfo
}

// ErrInvalidPrefix is wrapped by every prefix validation error.
var ErrInvalidPrefix = errors.New("invalid topic prefix")

// Topics builds and parses the topics of one prefix P. The zero value is not
// usable; use NewTopics.
type Topics struct {
	prefix string // P, validated
	root   string // P + "/"
}

// NewTopics returns Topics for prefix, which must be one or more topic levels
// with no wildcards, no empty level and no leading or trailing '/'. An empty
// prefix means DefaultPrefix.
func NewTopics(prefix string) (Topics, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if err := ValidatePrefix(prefix); err != nil {
		return Topics{}, err
	}
	return Topics{prefix: prefix, root: prefix + "/"}, nil
}

// MustTopics is NewTopics that panics on error, for tests and constants.
func MustTopics(prefix string) Topics {
	t, err := NewTopics(prefix)
	if err != nil {
		panic(err)
	}
	return t
}

// ValidatePrefix checks a topic prefix (see NewTopics).
func ValidatePrefix(prefix string) error {
	switch {
	case prefix == "":
		return fmt.Errorf("%w: empty", ErrInvalidPrefix)
	case strings.ContainsAny(prefix, "+#"):
		return fmt.Errorf("%w %q: wildcards + and # are not allowed", ErrInvalidPrefix, prefix)
	case strings.HasPrefix(prefix, "/") || strings.HasSuffix(prefix, "/"):
		return fmt.Errorf("%w %q: no leading or trailing /", ErrInvalidPrefix, prefix)
	case strings.Contains(prefix, "//"):
		return fmt.Errorf("%w %q: empty topic level", ErrInvalidPrefix, prefix)
	case strings.HasPrefix(prefix, "$"):
		return fmt.Errorf("%w %q: must not start with $", ErrInvalidPrefix, prefix)
	case strings.ContainsRune(prefix, 0):
		return fmt.Errorf("%w %q: NUL character", ErrInvalidPrefix, prefix)
	}
	return nil
}

// Prefix returns P.
func (t Topics) Prefix() string { return t.prefix }

// Topic returns P/<id>/<kind>. It does not validate id.
func (t Topics) Topic(id string, k Kind) string {
	return t.root + id + "/" + k.String()
}

// Status returns P/<id>/status.
func (t Topics) Status(id string) string { return t.Topic(id, KindStatus) }

// LED returns P/<id>/led.
func (t Topics) LED(id string) string { return t.Topic(id, KindLED) }

// Count returns P/<id>/count.
func (t Topics) Count(id string) string { return t.Topic(id, KindCount) }

// Info returns P/<id>/info.
func (t Topics) Info(id string) string { return t.Topic(id, KindInfo) }

// LEDSet returns P/<id>/led/set.
func (t Topics) LEDSet(id string) string { return t.Topic(id, KindLEDSet) }

// BoardFilter is the MQTT filter P/+/+ that matches every topic a board
// publishes (status, led, count, info) and not the led/set commands.
func (t Topics) BoardFilter() string { return t.root + "+/+" }

// DeviceOf returns the first level under P of topic, the device id a topic
// of any shape belongs to (not validated), for limits and access checks.
func (t Topics) DeviceOf(topic string) (id string, ok bool) {
	rest, found := strings.CutPrefix(topic, t.root)
	if !found {
		return "", false
	}
	id, _, _ = strings.Cut(rest, "/")
	return id, id != ""
}

// AllFilter is the MQTT filter P/# that matches every topic under P.
func (t Topics) AllFilter() string { return t.root + "#" }

// DeviceFilter is the MQTT filter P/<id>/# for every topic of one device.
func (t Topics) DeviceFilter(id string) string { return t.root + id + "/#" }

// Parse splits a topic under P into the device id and kind. ok is false for
// topics outside P, with an invalid id, or of an unknown kind.
func (t Topics) Parse(topic string) (id string, k Kind, ok bool) {
	rest, found := strings.CutPrefix(topic, t.root)
	if !found {
		return "", KindUnknown, false
	}
	id, suffix, found := strings.Cut(rest, "/")
	if !found || !ValidID(id) {
		return "", KindUnknown, false
	}
	switch suffix {
	case "status":
		k = KindStatus
	case "led":
		k = KindLED
	case "count":
		k = KindCount
	case "info":
		k = KindInfo
	case "led/set":
		k = KindLEDSet
	default:
		return "", KindUnknown, false
	}
	return id, k, true
}

// CheckID returns the error for a topic shaped like a board's topic under
// P (P/<id>/status, led, count, info or led/set) whose id is invalid, and
// nil for any other topic: a valid board topic, or one that is not a board
// topic at all. Call it where Parse said no, to tell a board with a bad id
// from unrelated traffic.
func (t Topics) CheckID(topic string) error {
	rest, found := strings.CutPrefix(topic, t.root)
	if !found {
		return nil
	}
	for _, suffix := range [...]string{"/status", "/led", "/count", "/info", "/led/set"} {
		if id, ok := strings.CutSuffix(rest, suffix); ok {
			if err := ValidateID(id); err != nil {
				return fmt.Errorf("topic %q: %w", topic, err)
			}
		}
	}
	return nil
}

// Home Assistant MQTT discovery topics, under the discovery prefix H.

// HADiscovery returns H/<component>/<id>/<object>/config, where Home
// Assistant reads the config of one entity.
func HADiscovery(haPrefix, component, id, object string) string {
	return haPrefix + "/" + component + "/" + id + "/" + object + "/config"
}

// HAStatus returns H/status, where Home Assistant says online when it
// (re)starts.
func HAStatus(haPrefix string) string { return haPrefix + "/status" }
