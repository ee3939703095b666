// Origin: who published a message an inline subscriber sees, so that the
// history can say who switched a board and why it went offline.

package broker

import (
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// willHook marks the Last Will a disconnecting client's goroutine is
// publishing. Mochi calls OnWill, delivers the Will to the subscribers and
// then calls OnWillSent, all on that goroutine; an inline subscriber in
// between finds the mark under the client's id and topic. (A Will with a
// delay is published later by Mochi's loop without OnWill: it is not
// marked. Boards set no delay.)
type willHook struct {
	mqtt.HookBase
	sending sync.Map // client id → topic of the Will being published
}

func (h *willHook) ID() string { return "switchyard-will" }

func (h *willHook) Provides(b byte) bool { return b == mqtt.OnWill || b == mqtt.OnWillSent }

func (h *willHook) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	h.sending.Store(cl.ID, will.TopicName)
	return will, nil
}

func (h *willHook) OnWillSent(cl *mqtt.Client, _ packets.Packet) { h.sending.Delete(cl.ID) }

// isWill reports whether pk is the Will its origin's goroutine is sending.
func (h *willHook) isWill(pk *packets.Packet) bool {
	t, ok := h.sending.Load(pk.Origin)
	return ok && t.(string) == pk.TopicName
}

// origin fills m's Client, User and Will from pk.
func (b *Broker) origin(m *Message, pk *packets.Packet) {
	if pk.Origin == mqtt.InlineClientId {
		return // the control plane's own
	}
	m.Client = pk.Origin
	if b.auth != nil {
		if v, ok := b.auth.logins.Load(pk.Origin); ok {
			if id := v.(*login).id; !id.Anonymous {
				m.User = id.Name
			}
		}
	}
	m.Will = b.wills.isWill(pk)
}
