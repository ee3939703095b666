package broker

import (
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"switchyard/auth"
)

// Authorizer is what the broker needs to know of users and rights.
type Authorizer interface {
	// Login's remote is the client's address, for throttling.
	Login(name, password, remote string) (auth.Identity, error)
	Anonymous(remoteAddr string) (auth.Identity, error)
	CanUseClientID(id auth.Identity, clientID string) bool
	CanPublish(id auth.Identity, topic string) bool
	CanSubscribe(id auth.Identity, filter string) bool
}

// authHook enforces users, roles and anonymous access on MQTT clients. It
// closes holes Mochi leaves open by default: a Will outside the client's
// rights is refused at CONNECT, a client id whose session is live (its
// client connected, or away with a kept session) can only be taken over by
// the same user, and filters are checked level by level so no wildcard
// escapes the client's tree (see auth.CanSubscribe).
type authHook struct {
	mqtt.HookBase
	az  Authorizer
	srv *mqtt.Server
	// logins maps a client id to the login of the connection that holds
	// its session, from admission until the session ends: with the
	// connection for a clean session, at expiry for a kept one, or when
	// a later connection of the same user takes it over. A kept session
	// needs it while its client is away: Mochi checks every delivery
	// (OnACLCheck), and a message refused there is not queued.
	logins sync.Map // client id → *login
}

// login is the identity an admitted connection logged in with.
type login struct {
	cl *mqtt.Client
	id auth.Identity
}

// identity returns the login holding cl's session: cl's own, or, while a
// later connection of the same user takes cl's session over, that one's.
func (h *authHook) identity(cl *mqtt.Client) (auth.Identity, bool) {
	v, ok := h.logins.Load(cl.ID)
	if !ok {
		return auth.Identity{}, false
	}
	return v.(*login).id, true
}

// forget drops cl's login when cl's session ends, unless a later
// connection has taken the session over.
func (h *authHook) forget(cl *mqtt.Client) {
	if v, ok := h.logins.Load(cl.ID); ok && v.(*login).cl == cl {
		h.logins.CompareAndDelete(cl.ID, v)
	}
}

// OnPacketEncode completes an MQTT 5 CONNACK that admits a client with
// what Mochi leaves out: the maximum packet size the broker accepts, and,
// for an anonymous client, that its session expires with the connection
// (see admit). Every other packet passes unchanged.
func (h *authHook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type != packets.Connack || cl.Properties.ProtocolVersion < 5 || pk.ReasonCode >= packets.ErrUnspecifiedError.Code {
		return pk
	}
	pk.Properties.MaximumPacketSize = h.srv.Options.Capabilities.MaximumPacketSize
	if id, ok := h.identity(cl); ok && id.Anonymous {
		pk.Properties.SessionExpiryInterval, pk.Properties.SessionExpiryIntervalFlag = 0, true
	}
	return pk
}

func (h *authHook) ID() string { return "switchyard-auth" }

func (h *authHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnDisconnect, mqtt.OnClientExpired, mqtt.OnPacketEncode:
		return true
	}
	return false
}

// OnConnect authenticates the client and checks its client id, its Will and
// any takeover. A refusal is answered with a CONNACK carrying the reason
// (Mochi would otherwise close the connection without one).
func (h *authHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	code := h.admit(cl, pk)
	if code == packets.CodeSuccess {
		return nil
	}
	_ = h.srv.SendConnack(cl, connackCode(cl, code), false, nil) // the client may be gone already
	return code
}

// connackCode turns a refusal into the return code the client's protocol
// version knows. Mochi maps v5 codes for v3 clients only partly (0x87 "not
// authorized" would go out as is, which MQTT 3.1.1 clients misread).
func connackCode(cl *mqtt.Client, code packets.Code) packets.Code {
	if cl.Properties.ProtocolVersion >= 5 {
		return code
	}
	switch code {
	case packets.ErrBadUsernameOrPassword:
		return packets.Code{Code: 0x04, Reason: code.Reason} // bad user name or password
	case packets.ErrNotAuthorized:
		return packets.Err3NotAuthorized
	case packets.ErrClientIdentifierNotValid:
		return packets.Err3ClientIdentifierNotValid
	}
	return packets.Err3ServerUnavailable
}

func (h *authHook) admit(cl *mqtt.Client, pk packets.Packet) packets.Code {
	var id auth.Identity
	var err error
	if pk.Connect.UsernameFlag && len(pk.Connect.Username) > 0 {
		id, err = h.az.Login(string(pk.Connect.Username), string(pk.Connect.Password), cl.Net.Remote)
		if err != nil {
			return packets.ErrBadUsernameOrPassword
		}
	} else if id, err = h.az.Anonymous(cl.Net.Remote); err != nil {
		return packets.ErrNotAuthorized
	}
	if !h.az.CanUseClientID(id, cl.ID) {
		return packets.ErrClientIdentifierNotValid
	}
	if pk.Connect.WillFlag && !h.az.CanPublish(id, pk.Connect.WillTopic) {
		return packets.ErrNotAuthorized
	}
	if existing, ok := h.srv.Clients.Get(cl.ID); ok {
		// Connected, or away with its session kept: a login is held
		// until the session ends.
		if p, ok := h.identity(existing); ok && (p.Name != id.Name || p.Anonymous != id.Anonymous) {
			return packets.ErrClientIdentifierNotValid
		}
	}
	if id.Anonymous {
		// No session outlives an anonymous client's connection: a
		// persistent session keeps its subscriptions matched (a copy of
		// every message, for each such session) for up to a day, and
		// anybody local could leave thousands behind. Named users keep
		// theirs.
		cl.Properties.Clean = true
		cl.Properties.Props.SessionExpiryInterval = 0
		cl.Properties.Props.SessionExpiryIntervalFlag = false
	}
	h.logins.Store(cl.ID, &login{cl: cl, id: id})
	return packets.CodeSuccess
}

// OnConnectAuthenticate lets in exactly the clients OnConnect admitted.
func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	v, ok := h.logins.Load(cl.ID)
	return ok && v.(*login).cl == cl
}

// OnACLCheck checks publishes (write) and subscriptions and deliveries,
// also deliveries to a kept session whose client is away.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	id, ok := h.identity(cl)
	if !ok {
		return false
	}
	if write {
		return h.az.CanPublish(id, topic)
	}
	return h.az.CanSubscribe(id, topic)
}

// OnDisconnect forgets the login of a session that ends with its
// connection (expire); a kept session keeps it until OnClientExpired.
func (h *authHook) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	if expire {
		h.forget(cl)
	}
}

// OnClientExpired forgets the login of a kept session Mochi drops.
func (h *authHook) OnClientExpired(cl *mqtt.Client) {
	h.forget(cl)
}
