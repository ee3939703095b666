package broker

import (
	"log/slog"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"switchyard/devices"
)

// deviceLimit bounds how many devices may hold retained messages under P,
// so a flood of new ids cannot grow the retained store (and the storage
// log) without bound. A retained publish for a new id past the limit is
// acknowledged and dropped; known devices are never refused.
type deviceLimit struct {
	mqtt.HookBase
	topics devices.Topics
	max    int
	log    *slog.Logger

	mu      sync.Mutex                     // guards ids, lastLog
	ids     map[string]map[string]struct{} // device id → its retained topics
	lastLog time.Time
}

func newDeviceLimit(t devices.Topics, max int, stored []string, log *slog.Logger) *deviceLimit {
	l := &deviceLimit{topics: t, max: max, log: log, ids: map[string]map[string]struct{}{}}
	for _, topic := range stored {
		l.track(topic, true)
	}
	return l
}

func (l *deviceLimit) ID() string { return "switchyard-device-limit" }

func (l *deviceLimit) Provides(b byte) bool { return b == mqtt.OnPublish || b == mqtt.OnRetainMessage }

// OnPublish drops a retained message that would make one device too many.
func (l *deviceLimit) OnPublish(_ *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if !pk.FixedHeader.Retain || len(pk.Payload) == 0 {
		return pk, nil
	}
	id, ok := l.topics.DeviceOf(pk.TopicName)
	if !ok {
		return pk, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, known := l.ids[id]; known || len(l.ids) < l.max {
		return pk, nil
	}
	if time.Since(l.lastLog) > time.Second {
		l.lastLog = time.Now()
		l.log.Warn("retained message dropped: too many devices", "topic", pk.TopicName, "limit", l.max)
	}
	return pk, packets.CodeSuccessIgnore // acknowledged, not stored, not relayed
}

// OnRetainMessage keeps the count of devices with retained messages.
func (l *deviceLimit) OnRetainMessage(_ *mqtt.Client, pk packets.Packet, _ int64) {
	l.mu.Lock()
	l.track(pk.TopicName, len(pk.Payload) > 0)
	l.mu.Unlock()
}

// track records a retained topic stored or cleared. Caller holds mu (or
// owns l).
func (l *deviceLimit) track(topic string, stored bool) {
	id, ok := l.topics.DeviceOf(topic)
	if !ok {
		return
	}
	set := l.ids[id]
	if stored {
		if set == nil {
			set = map[string]struct{}{}
			l.ids[id] = set
		}
		set[topic] = struct{}{}
		return
	}
	delete(set, topic)
	if len(set) == 0 {
		delete(l.ids, id)
	}
}
