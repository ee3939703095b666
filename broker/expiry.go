package broker

import (
	"errors"
	"reflect"
	"sync"
	"time"
	"unsafe"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Retained messages that expire (an MQTT 5 publisher's Message Expiry
// Interval), expired by the broker instead of by Mochi's sweep.
//
// Once a second Mochi looks for expired retained messages
// (Server.clearExpiredRetainedMessages) by copying every retained message
// into a new map (Packets.GetAll) under the retained store's read lock. With
// a fleet of 1,000 boards that is some 4,500 messages: a runtime trace of
// bench/rollout.sh's third wave caught one copy holding a P for 13 ms and
// starting a collection, while every retained publish waited for the lock,
// holding Mochi's topic-tree lock; the live path's p99 during a rollout
// fell with the sweep switched off (bench/README.md, "The live path during
// a rollout"). Mochi has no option for the sweep, and the boards' own
// retained messages never expire (MaximumMessageExpiryInterval is 0): only a
// message published with an expiry does, and those are few.
//
// So the broker stops Mochi's sweep (stopRetainedSweep) and expires those
// few itself: retainExpiry learns from the OnRetainMessage hook which topics
// hold a retained message with an expiry, and once a second deletes those
// that have expired, as Mochi would have (the message is dropped from
// Mochi's store and the retained-message log is told through
// OnRetainedExpired).

// retainExpiry is a Mochi hook that tracks the retained messages carrying
// an expiry, and expires them.
type retainExpiry struct {
	mqtt.HookBase
	srv   *mqtt.Server
	store *retainLog // nil when memory only

	mu  sync.Mutex       // guards due
	due map[string]int64 // topic → its retained message's expiry (unix seconds)

	stop chan struct{}  // closed by close: run returns
	wg   sync.WaitGroup // the run goroutine, once start has started it
	once sync.Once
}

func newRetainExpiry(srv *mqtt.Server, store *retainLog) *retainExpiry {
	return &retainExpiry{srv: srv, store: store, due: make(map[string]int64), stop: make(chan struct{})}
}

// start runs the expiry once a second until close.
func (e *retainExpiry) start() {
	e.wg.Add(1)
	go e.run() // ends when close closes e.stop
}

// ID implements mqtt.Hook.
func (e *retainExpiry) ID() string { return "switchyard-retain-expiry" }

// Provides implements mqtt.Hook.
func (e *retainExpiry) Provides(b byte) bool { return b == mqtt.OnRetainMessage }

// OnRetainMessage implements mqtt.Hook: it runs on the publisher's
// goroutine and only updates a map.
func (e *retainExpiry) OnRetainMessage(_ *mqtt.Client, pk packets.Packet, _ int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(pk.Payload) > 0 && pk.Expiry > 0 {
		e.due[pk.TopicName] = pk.Expiry
		return
	}
	delete(e.due, pk.TopicName) // replaced by a message without expiry, or cleared
}

// run expires due messages once a second until close.
func (e *retainExpiry) run() {
	defer e.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-e.stop:
			return
		case now := <-tick.C:
			e.expire(now.Unix())
		}
	}
}

// expire deletes the retained messages whose expiry is before now, as
// Mochi's sweep does ([MQTT-3.3.2-5]). A message retained on the same topic
// between the check and the deletion can be deleted with it, a race
// Mochi's own sweep has too, over a far longer window.
func (e *retainExpiry) expire(now int64) {
	var topics []string
	e.mu.Lock()
	for topic, at := range e.due {
		if at < now {
			topics = append(topics, topic)
			delete(e.due, topic)
		}
	}
	e.mu.Unlock()
	for _, topic := range topics {
		pk, ok := e.srv.Topics.Retained.Get(topic)
		if !ok || pk.Expiry <= 0 || pk.Expiry >= now {
			continue // replaced meanwhile: the hook has recorded the new one
		}
		e.srv.Topics.Retained.Delete(topic)
		if e.store != nil {
			e.store.OnRetainedExpired(topic)
		}
	}
}

// close stops run, if started, and waits for it; it may be called more
// than once.
func (e *retainExpiry) close() {
	e.once.Do(func() { close(e.stop) })
	e.wg.Wait()
}

// errNoSweep says stopRetainedSweep could not find Mochi's ticker.
var errNoSweep = errors.New("mochi's retained-message sweep not found (Server.loop.retainedExpiry): a Mochi upgrade renamed it")

// stopRetainedSweep stops Mochi's once-a-second retained-message sweep, a
// *time.Ticker in the unexported field loop.retainedExpiry of srv. It
// returns errNoSweep, changing nothing, when the field is not there (a
// Mochi upgrade renamed it: TestMochiRetainedSweepStopped then fails, and
// the broker keeps Mochi's sweep, correct but slower).
func stopRetainedSweep(srv *mqtt.Server) error {
	loop := reflect.ValueOf(srv).Elem().FieldByName("loop")
	if !loop.IsValid() || loop.Kind() != reflect.Pointer || loop.IsNil() || loop.Elem().Kind() != reflect.Struct {
		return errNoSweep
	}
	f := loop.Elem().FieldByName("retainedExpiry")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*time.Ticker]() {
		return errNoSweep
	}
	// The field is unexported: read it through its address.
	t := *(**time.Ticker)(unsafe.Pointer(f.UnsafeAddr()))
	if t == nil {
		return errNoSweep
	}
	t.Stop()
	return nil
}
