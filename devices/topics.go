package devices

import (
	"errors"
	"fmt"
	"strings"
)

// This file is the only place that builds or splits topic strings.

// DefaultPrefix is the topic prefix P when none is configured.
const DefaultPrefix = "devices"

// Kind names what a topic under P/<id>/ carries. The zero Kind is
// KindUnknown; every other Kind is a row of the kind table below.
type Kind uint8

// KindUnknown is the Kind of no topic of the contract.
const KindUnknown Kind = 0

// kindSpec is one row of the kind table: what the contract says of a kind.
type kindSpec struct {
	suffix    string // the levels after P/<id>/, e.g. "led/set"
	fromBoard bool   // published by the board; a message on it makes the board known unless quiet
	quiet     bool   // from the board, but a message on it alone makes no board known
	qos       byte   // the QoS its publisher uses
	retained  bool   // its publisher retains it
}

// kinds is the kind table, indexed by Kind: kinds[0] is KindUnknown, the
// rest are appended by defineKind while the package initialises (Go
// initialises kinds first, since defineKind reads it), so the table is
// complete and read-only before any other code runs.
var kinds = []kindSpec{{suffix: "unknown"}}

// defineKind adds a row to the kind table and returns its Kind.
func defineKind(s kindSpec) Kind {
	kinds = append(kinds, s)
	return Kind(len(kinds) - 1)
}

// The topic kinds of the contract (its "MQTT topics" table), one row each.
// Adding a kind is adding a row here: String, FromBoard, QoS, Retained,
// Kinds, Topic, Parse and CheckID all read the table, and TestKindTable
// checks every row (a suffix of valid levels, unique; a kind a board
// publishes has one level, so BoardFilter matches it). The order of the
// rows means nothing. They are variables only so that a row defines its
// Kind; nothing assigns them.
var (
	KindStatus = defineKind(kindSpec{suffix: "status", fromBoard: true, qos: 1, retained: true}) // online/offline
	KindLED    = defineKind(kindSpec{suffix: "led", fromBoard: true, qos: 1, retained: true})    // ON/OFF
	KindCount  = defineKind(kindSpec{suffix: "count", fromBoard: true, qos: 0})                  // decimal counter
	KindInfo   = defineKind(kindSpec{suffix: "info", fromBoard: true, qos: 1, retained: true})   // JSON object
	KindLEDSet = defineKind(kindSpec{suffix: "led/set", qos: 1})                                 // ON/OFF/TOGGLE command to the board
	// Firmware updates (v2): the board's update state, and a job for it.
	KindUpdate    = defineKind(kindSpec{suffix: "update", fromBoard: true, quiet: true, qos: 1, retained: true}) // JSON UpdateReport
	KindUpdateSet = defineKind(kindSpec{suffix: "update/set", qos: 1})                                           // JSON UpdateCommand to the board
)

// Kinds returns every kind of the contract (not KindUnknown).
func Kinds() []Kind {
	ks := make([]Kind, 0, len(kinds)-1)
	for k := 1; k < len(kinds); k++ {
		ks = append(ks, Kind(k))
	}
	return ks
}

// spec returns k's row, the KindUnknown row for a Kind outside the table.
func (k Kind) spec() *kindSpec {
	if int(k) >= len(kinds) {
		return &kinds[KindUnknown]
	}
	return &kinds[k]
}

// String returns the topic suffix of k ("status", "led/set", ...), and
// "unknown" for KindUnknown.
func (k Kind) String() string { return k.spec().suffix }

// FromBoard reports whether a board publishes topics of kind k (and so
// whether a message on it makes the board known).
func (k Kind) FromBoard() bool { return k.spec().fromBoard }

// MakesKnown reports whether a message on a topic of kind k makes its board
// known (status, led, count, info; not update, not the commands).
func (k Kind) MakesKnown() bool { s := k.spec(); return s.fromBoard && !s.quiet }

// QoS returns the QoS the contract gives messages of kind k.
func (k Kind) QoS() byte { return k.spec().qos }

// BoardSubscribeQoS is the QoS at which a board subscribes its own
// topics (led/set, update/set, status). Commands are published at QoS 1;
// delivered to a QoS 0 subscription they arrive at QoS 0, which on a live
// connection is as sure (TCP) and, with a clean session, QoS 1 keeps
// nothing across a reconnect either. What QoS 1 costs is on clustered
// brokers: on NATS every QoS 1 subscription is a replicated JetStream
// consumer, created at every connect and deleted at the next, 1,000 at
// most per stream by default. Measured on a three-node NATS cluster on
// loopback: 1,000 boards subscribing at QoS 1 never all came online
// (refused subscriptions, then reconnect storms); at QoS 0 all did within
// 10 s.
const BoardSubscribeQoS byte = 0

// Retained reports whether the contract has messages of kind k retained.
func (k Kind) Retained() bool { return k.spec().retained }

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

// Update returns P/<id>/update, where the board reports its update state.
func (t Topics) Update(id string) string { return t.Topic(id, KindUpdate) }

// UpdateSet returns P/<id>/update/set, where the control plane sends update jobs.
func (t Topics) UpdateSet(id string) string { return t.Topic(id, KindUpdateSet) }

// LEDSet returns P/<id>/led/set.
func (t Topics) LEDSet(id string) string { return t.Topic(id, KindLEDSet) }

// BoardFilter is the MQTT filter P/+/+. It matches every topic a board
// publishes (a kind a board publishes has one level) and not the led/set
// commands.
func (t Topics) BoardFilter() string { return t.root + "+/+" }

// CommandFilter is the MQTT filter P/+/led/set: every board's commands.
func (t Topics) CommandFilter() string { return t.root + "+/" + KindLEDSet.String() }

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

// Under reports whether every topic filter can match lies strictly below P
// (see FilterUnder).
func (t Topics) Under(filter string) bool { return FilterUnder(t.prefix, filter) }

// UnderDevice reports whether every topic filter can match lies strictly
// below P/<id> (see FilterUnder).
func (t Topics) UnderDevice(id, filter string) bool {
	return FilterUnder(t.root+id, filter)
}

// FilterUnder reports whether every topic the MQTT filter can match lies
// strictly below the topic tree root: filter's first levels equal root's,
// literally (so no wildcard reaches outside root), and it has at least one
// level more.
func FilterUnder(root, filter string) bool {
	rest, ok := strings.CutPrefix(filter, root)
	return ok && len(rest) > 1 && rest[0] == '/'
}

// MatchFilter reports whether topic matches the MQTT filter, level by
// level: + matches one level, # one or more remaining levels.
func MatchFilter(filter, topic string) bool {
	for {
		f, frest, fmore := strings.Cut(filter, "/")
		t, trest, tmore := strings.Cut(topic, "/")
		switch {
		case f == "#":
			return true
		case f != "+" && f != t:
			return false
		case !fmore || !tmore:
			return !fmore && !tmore
		}
		filter, topic = frest, trest
	}
}

// Parse splits a topic under P into the device id and kind. ok is false for
// topics outside P, with an invalid id, or of an unknown kind.
func (t Topics) Parse(topic string) (id string, k Kind, ok bool) {
	return parse(t.root, topic)
}

// ParseBytes is Parse for a topic read off the wire into a byte slice; id
// aliases topic, and nothing is allocated.
func (t Topics) ParseBytes(topic []byte) (id []byte, k Kind, ok bool) {
	return parse(t.root, topic)
}

func parse[S string | []byte](root string, topic S) (id S, k Kind, ok bool) {
	if len(topic) <= len(root) || string(topic[:len(root)]) != root {
		return id, KindUnknown, false
	}
	rest := topic[len(root):]
	i := 0
	for i < len(rest) && rest[i] != '/' {
		i++
	}
	if i == len(rest) || !validID(rest[:i]) {
		return id, KindUnknown, false
	}
	suffix := rest[i+1:]
	for k := 1; k < len(kinds); k++ {
		if string(suffix) == kinds[k].suffix {
			return rest[:i], Kind(k), true
		}
	}
	return id, KindUnknown, false
}

// CheckID returns the error for a topic shaped like a board's topic under
// P (P/<id>/<a kind's suffix>) whose id is invalid, and nil for any other
// topic: a valid board topic, or one that is not a board topic at all.
// Call it where Parse said no, to tell a board with a bad id from
// unrelated traffic.
func (t Topics) CheckID(topic string) error {
	rest, found := strings.CutPrefix(topic, t.root)
	if !found {
		return nil
	}
	for _, s := range kinds[1:] {
		id, ok := strings.CutSuffix(rest, s.suffix)
		if !ok {
			continue
		}
		if id, ok = strings.CutSuffix(id, "/"); !ok {
			continue
		}
		if err := ValidateID(id); err != nil {
			return fmt.Errorf("topic %q: %w", topic, err)
		}
	}
	return nil
}

// Probe returns the topic on which a control plane in external broker
// mode, connected with MQTT client id clientID, checks its connection end
// to end (it subscribes it and publishes small messages on it):
// switchyard/probe/<clientID sanitized to the id alphabet>, or, when P
// itself starts with the level switchyard, switchyard-probe/<...>. It
// never lies under P, so no client subscribed to P/+/+ or P/# sees it,
// and each control plane has its own.
func (t Topics) Probe(clientID string) string {
	root := "switchyard/probe/"
	if first, _, _ := strings.Cut(t.prefix, "/"); first == "switchyard" {
		root = "switchyard-probe/"
	}
	return root + SanitizeID(clientID)
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
