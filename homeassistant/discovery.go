// Package homeassistant publishes Home Assistant MQTT discovery configs for
// every known board, so boards appear in Home Assistant as a light (the LED)
// and a sensor (the count) with no extra work.
//
// Configs are retained under the discovery prefix H: published when a board
// becomes known and when its info changes, all of them again when Home
// Assistant says H/status online, and cleared when a board is forgotten.
package homeassistant

import (
	"encoding/json"
	"log/slog"
	"sync"

	"switchyard/devices"
)

// DefaultPrefix is the discovery prefix Home Assistant uses by default.
const DefaultPrefix = "homeassistant"

// Message is one retained discovery message.
type Message struct {
	Topic   string
	Payload []byte // empty: clear
}

type deviceBlock struct {
	Identifiers  []string `json:"identifiers"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"manufacturer"`
	Model        string   `json:"model,omitempty"`
	SWVersion    string   `json:"sw_version,omitempty"`
}

// light and sensor list Home Assistant's documented keys in the order the
// Switchyard contract gives them.
type light struct {
	Name                string      `json:"name"`
	UniqueID            string      `json:"unique_id"`
	CommandTopic        string      `json:"command_topic"`
	StateTopic          string      `json:"state_topic"`
	PayloadOn           string      `json:"payload_on"`
	PayloadOff          string      `json:"payload_off"`
	AvailabilityTopic   string      `json:"availability_topic"`
	PayloadAvailable    string      `json:"payload_available"`
	PayloadNotAvailable string      `json:"payload_not_available"`
	Device              deviceBlock `json:"device"`
}

type sensor struct {
	Name                string      `json:"name"`
	UniqueID            string      `json:"unique_id"`
	StateTopic          string      `json:"state_topic"`
	StateClass          string      `json:"state_class"`
	AvailabilityTopic   string      `json:"availability_topic"`
	PayloadAvailable    string      `json:"payload_available"`
	PayloadNotAvailable string      `json:"payload_not_available"`
	Device              deviceBlock `json:"device"`
}

// Configs returns the discovery messages of one board: its LED as a light
// and its count as a sensor.
func Configs(t devices.Topics, haPrefix string, d *devices.Device) []Message {
	dev := deviceBlock{
		Identifiers:  []string{"switchyard_" + d.ID},
		Name:         d.Name(),
		Manufacturer: "Switchyard",
		Model:        d.Info.Board,
		SWVersion:    d.Info.Firmware,
	}
	l := light{
		Name: "LED", UniqueID: "switchyard_" + d.ID + "_led",
		CommandTopic: t.LEDSet(d.ID), StateTopic: t.LED(d.ID),
		PayloadOn: "ON", PayloadOff: "OFF",
		AvailabilityTopic: t.Status(d.ID), PayloadAvailable: devices.Online, PayloadNotAvailable: devices.Offline,
		Device: dev,
	}
	s := sensor{
		Name: "Count", UniqueID: "switchyard_" + d.ID + "_count",
		StateTopic: t.Count(d.ID), StateClass: "total_increasing",
		AvailabilityTopic: t.Status(d.ID), PayloadAvailable: devices.Online, PayloadNotAvailable: devices.Offline,
		Device: dev,
	}
	lb, _ := json.Marshal(l) // plain structs of strings: cannot fail
	sb, _ := json.Marshal(s)
	return []Message{
		{Topic: devices.HADiscovery(haPrefix, "light", d.ID, "led"), Payload: lb},
		{Topic: devices.HADiscovery(haPrefix, "sensor", d.ID, "count"), Payload: sb},
	}
}

// Clears returns the messages that remove a board's entities.
func Clears(haPrefix, id string) []Message {
	return []Message{
		{Topic: devices.HADiscovery(haPrefix, "light", id, "led")},
		{Topic: devices.HADiscovery(haPrefix, "sensor", id, "count")},
	}
}

// Publisher is what the discovery publisher needs of the MQTT side.
type Publisher interface {
	Publish(topic string, payload []byte, retain bool, qos byte) error
}

// Discovery keeps Home Assistant's view of the fleet current. Its methods
// never block: they hand work to one sender goroutine, so the gateway's
// loop and a broker's message hook can call them.
//
// A board's change is queued as its messages (the gateway's loop calls
// DeviceChanged once per change). Home Assistant coming online is not:
// HAStatus runs on the broker's read goroutine, where copying the fleet
// and building every config would stall the broker, and a burst of
// "online" would queue the whole fleet once per message. It only sets
// republish and kicks; the sender copies the fleet and publishes it, once
// for however many "online" arrived meanwhile.
//
// Lock order: the gateway calls DeviceChanged holding its own lock, so mu
// is taken inside the gateway's lock and the sender never calls the fleet
// function while holding mu.
type Discovery struct {
	topics devices.Topics
	prefix string
	pub    Publisher
	log    *slog.Logger

	mu        sync.Mutex              // guards queue, sent, republish
	queue     []Message               // waiting for the sender
	sent      map[string][]byte       // topic → payload last queued, to skip repeats
	republish func() []devices.Device // non-nil: publish this fleet's configs again
	kick      chan struct{}           // cap 1: the sender has work
	stop      chan struct{}
	wg        sync.WaitGroup
	once      sync.Once
}

// New starts a Discovery publishing under haPrefix (empty: DefaultPrefix).
func New(t devices.Topics, haPrefix string, pub Publisher, log *slog.Logger) *Discovery {
	if haPrefix == "" {
		haPrefix = DefaultPrefix
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Discovery{topics: t, prefix: haPrefix, pub: pub, log: log,
		sent: map[string][]byte{}, kick: make(chan struct{}, 1), stop: make(chan struct{})}
	d.wg.Add(1)
	go d.sender() // ends when Close closes d.stop
	return d
}

// Prefix returns the discovery prefix H.
func (d *Discovery) Prefix() string { return d.prefix }

// StatusTopic returns H/status, which the caller subscribes to and feeds
// to HAStatus.
func (d *Discovery) StatusTopic() string { return devices.HAStatus(d.prefix) }

// DeviceChanged publishes a board's configs if they differ from the last ones
// (a board became known, or its name or info changed).
func (d *Discovery) DeviceChanged(dev devices.Device) {
	d.enqueue(Configs(d.topics, d.prefix, &dev))
}

// DeviceRemoved clears a forgotten board's configs.
func (d *Discovery) DeviceRemoved(id string) {
	d.enqueue(Clears(d.prefix, id))
}

// HAStatus handles a message on H/status: when Home Assistant comes online,
// every config is published again (it may have lost them). It runs on the
// broker's goroutine, so it only tells the sender, which calls fleet (a
// copy of every known board, such as the gateway's Devices) and publishes
// their configs; "online" messages that arrive before the sender gets to
// it cost nothing more.
func (d *Discovery) HAStatus(payload []byte, fleet func() []devices.Device) {
	if online, err := devices.ParseStatus(payload); err != nil || !online {
		return
	}
	d.mu.Lock()
	d.republish = fleet
	d.mu.Unlock()
	d.wake()
}

func (d *Discovery) enqueue(msgs []Message) {
	d.mu.Lock()
	n := 0
	for _, m := range msgs {
		if prev, ok := d.sent[m.Topic]; ok && string(prev) == string(m.Payload) {
			continue
		}
		if len(m.Payload) == 0 {
			delete(d.sent, m.Topic)
		} else {
			d.sent[m.Topic] = m.Payload
		}
		d.queue = append(d.queue, m)
		n++
	}
	d.mu.Unlock()
	if n > 0 {
		d.wake()
	}
}

// wake tells the sender it has work; a kick already pending covers this one.
func (d *Discovery) wake() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// sender is the only goroutine that publishes.
//
// A republish copies the fleet after publishing the queue taken with it.
// The gateway queues a change after applying it to the fleet, under the
// lock the copy takes, so a change the copy misses is queued after the
// copy and published after the republish: the last message on every
// topic still describes the fleet as it is (a board forgotten meanwhile
// gets its configs again, then their clears).
func (d *Discovery) sender() {
	defer d.wg.Done()
	for {
		select {
		case <-d.kick:
		case <-d.stop:
			return
		}
		d.mu.Lock()
		batch, fleet := d.queue, d.republish
		d.queue, d.republish = nil, nil
		d.mu.Unlock()
		for _, m := range batch {
			d.publish(m)
		}
		if fleet != nil {
			all := fleet() // not under mu: see the lock order on Discovery
			for i := range all {
				for _, m := range Configs(d.topics, d.prefix, &all[i]) {
					d.publish(m)
				}
			}
		}
	}
}

func (d *Discovery) publish(m Message) {
	if err := d.pub.Publish(m.Topic, m.Payload, true, 1); err != nil {
		d.log.Warn("home assistant discovery: publish failed", "topic", m.Topic, "err", err)
		d.mu.Lock()
		delete(d.sent, m.Topic) // try again on the next change
		d.mu.Unlock()
	}
}

// Close stops the sender. It is safe to call more than once.
func (d *Discovery) Close() error {
	d.once.Do(func() {
		close(d.stop)
		d.wg.Wait()
	})
	return nil
}
