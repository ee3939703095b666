package broker

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/packets"

	"switchyard/auth"
	"switchyard/internal/testutil"
)

func authBroker(t *testing.T, anon auth.Anonymous, extra Config) *Broker {
	t.Helper()
	extra.Auth = testAuthority(t, anon)
	return startBroker(t, extra)
}

// testAuthority knows two boards, a viewer, an operator and an admin.
func testAuthority(t *testing.T, anon auth.Anonymous) *auth.Authority {
	t.Helper()
	h := func(pw string) string { return bcryptHash(t, pw) }
	az, err := auth.New(auth.Config{Anonymous: anon, Users: []auth.User{
		{Name: "board-7", PasswordHash: h("pw7"), Role: auth.RoleDevice},
		{Name: "board-8", PasswordHash: h("pw8"), Role: auth.RoleDevice},
		{Name: "vera", PasswordHash: h("pwv"), Role: auth.RoleViewer},
		{Name: "otto", PasswordHash: h("pwo"), Role: auth.RoleOperator},
		{Name: "ada", PasswordHash: h("pwa"), Role: auth.RoleAdmin},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return az
}

type creds struct{ clientID, user, pass, will string }

func dial(b *Broker, c creds) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker("tcp://" + b.Addr().String()).SetClientID(c.clientID).
		SetUsername(c.user).SetPassword(c.pass).SetAutoReconnect(false).SetConnectTimeout(wait).
		SetConnectRetry(false)
	if c.will != "" {
		o.SetWill(c.will, "offline", 1, true)
	}
	cl := paho.NewClient(o)
	tok := cl.Connect()
	if !tok.WaitTimeout(wait) {
		return nil, errors.New("connect timed out")
	}
	return cl, tok.Error()
}

// mustDial connects as c, fails the test if the broker refuses, and
// disconnects at the end of the test.
func mustDial(t *testing.T, b *Broker, c creds) paho.Client {
	t.Helper()
	cl, err := dial(b, c)
	if err != nil {
		t.Fatalf("connect as %s (user %q): %v", c.clientID, c.user, err)
	}
	t.Cleanup(func() { cl.Disconnect(0) })
	return cl
}

func TestConnectRefusals(t *testing.T) {
	b := authBroker(t, auth.AnonOff, Config{})
	for _, tc := range []struct {
		name string
		c    creds
		want string // "" = admitted
	}{
		{"anonymous when off", creds{clientID: "x"}, "not Authorized"},
		{"wrong password", creds{"board-7", "board-7", "nope", ""}, "bad user name or password"},
		{"unknown user", creds{"ghost", "ghost", "pw", ""}, "bad user name or password"},
		{"device as another board", creds{"board-8", "board-7", "pw7", ""}, "identifier rejected"},
		{"device will on another board", creds{"board-7", "board-7", "pw7", "devices/board-8/status"}, "not Authorized"},
		{"viewer with a will", creds{"v1", "vera", "pwv", "devices/x/status"}, "not Authorized"},
		{"device, own will", creds{"board-7", "board-7", "pw7", "devices/board-7/status"}, ""},
		{"viewer", creds{"v2", "vera", "pwv", ""}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := dial(b, tc.c)
			if cl != nil {
				defer cl.Disconnect(0)
			}
			if tc.want == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want a CONNACK refusal %q", err, tc.want)
			}
		})
	}
}

func TestTakeoverOnlyBySameUser(t *testing.T) {
	b := authBroker(t, auth.AnonOff, Config{})
	first := mustDial(t, b, creds{"board-7", "board-7", "pw7", ""})
	if cl, err := dial(b, creds{"board-7", "ada", "pwa", ""}); err == nil || !strings.Contains(err.Error(), "identifier rejected") {
		if cl != nil {
			cl.Disconnect(0)
		}
		t.Fatalf("admin took over board-7's connection: %v", err)
	}
	if !first.IsConnectionOpen() {
		t.Fatal("the refused takeover disconnected the board")
	}
	mustDial(t, b, creds{"board-7", "board-7", "pw7", ""}) // the same user reconnecting
}

func TestRightsOverMQTT(t *testing.T) {
	b := authBroker(t, auth.AnonOff, Config{})
	board := mustDial(t, b, creds{"board-7", "board-7", "pw7", "devices/board-7/status"})
	viewer := mustDial(t, b, creds{"v", "vera", "pwv", ""})

	subscribe := func(c paho.Client, filter string) (byte, chan paho.Message) {
		t.Helper()
		ch := make(chan paho.Message, 16)
		tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) { ch <- m })
		if !tok.WaitTimeout(wait) {
			t.Fatalf("subscribe %s timed out", filter)
		}
		return tok.(*paho.SubscribeToken).Result()[filter], ch
	}
	for _, tc := range []struct {
		c      paho.Client
		filter string
		ok     bool
	}{
		{viewer, "#", false},
		{viewer, "+/board-7/#", false},
		{viewer, "$SYS/#", false},
		{board, "devices/#", false},
		{board, "devices/+/led/set", false},
		{board, "devices/board-7/led/set", true},
	} {
		if code, _ := subscribe(tc.c, tc.filter); (code < 0x80) != tc.ok {
			t.Errorf("subscribe %s: granted %#x, want ok=%v", tc.filter, code, tc.ok)
		}
	}
	_, seen := subscribe(viewer, "devices/#")
	// A board within its rights publishes QoS 1 and stays connected (Mochi
	// disconnects 3.1.1 clients on a refused QoS 1 publish).
	for _, topic := range []string{"devices/board-7/status", "devices/board-7/led", "devices/board-7/count", "devices/board-7/info"} {
		if tok := board.Publish(topic, 1, false, "x"); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}
	for range 4 {
		select {
		case <-seen:
		case <-time.After(wait):
			t.Fatal("viewer did not see the board's messages")
		}
	}
	if !board.IsConnectionOpen() {
		t.Fatal("board disconnected for publishing within its rights")
	}
	// Outside its rights: QoS 0 is dropped silently; nothing reaches others.
	board.Publish("devices/board-8/led", 0, false, "ON").WaitTimeout(wait)
	board.Publish("devices/board-7/led", 0, false, "marker").WaitTimeout(wait)
	for {
		select {
		case m := <-seen:
			if m.Topic() == "devices/board-8/led" {
				t.Fatal("a board published as another board")
			}
			if string(m.Payload()) == "marker" {
				return
			}
		case <-time.After(wait):
			t.Fatal("marker not seen")
		}
	}
}

func TestConnectTimeoutAndPacketSize(t *testing.T) {
	b := authBroker(t, auth.AnonLocal, Config{ConnectTimeout: 200 * time.Millisecond, MaxPacketSize: 1024})
	c, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(wait))
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("silent connection got data")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("silent connection was not closed by the broker")
	}
	t.Logf("silent connection closed after %v", time.Since(start))

	cl := mustDial(t, b, creds{clientID: "big"}) // anonymous from loopback
	cl.Publish("devices/big/info", 1, false, strings.Repeat("x", 2048)).WaitTimeout(time.Second)
	// No event tells "the broker dropped us", short of a handler: poll.
	if err := testutil.Eventually(wait, testutil.Until("the broker to drop a packet over mqtt.max_packet_size", func() bool { return !cl.IsConnectionOpen() })); err != nil {
		t.Error(err)
	}
}

func TestAnonymousLocalRights(t *testing.T) {
	b := authBroker(t, auth.AnonLocal, Config{})
	cl := mustDial(t, b, creds{clientID: "anon"}) // anonymous from loopback
	tok := cl.Subscribe("$SYS/#", 0, nil)
	tok.WaitTimeout(wait)
	if code := tok.(*paho.SubscribeToken).Result()["$SYS/#"]; code < 0x80 {
		t.Errorf("anonymous got $SYS: %#x", code)
	}
}

// TestAnonymousLocalNeedsALocalName: over MQTT-over-WebSocket, a loopback
// client that names another host (a page re-resolved to 127.0.0.1: DNS
// rebinding) is not let in anonymously; one that names this machine is.
func TestAnonymousLocalNeedsALocalName(t *testing.T) {
	b := authBroker(t, auth.AnonLocal, Config{WSListen: "127.0.0.1:0", AllowedOrigins: []string{"*"}})
	url := "ws://" + b.WSAddr().String() + "/mqtt"
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"", true}, // the address dialled: 127.0.0.1:port
		{"localhost", true},
		{"attacker.example", false},
		{"attacker.example:1884", false},
	} {
		o := paho.NewClientOptions().AddBroker(url).SetClientID("anon-ws").
			SetAutoReconnect(false).SetConnectTimeout(wait)
		if tc.host != "" {
			o.SetHTTPHeaders(http.Header{"Host": {tc.host}})
		}
		c := paho.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(wait) {
			t.Fatalf("host %q: connect timed out", tc.host)
		}
		if err := tok.Error(); (err == nil) != tc.ok {
			t.Errorf("host %q: connect error %v, want ok %v", tc.host, err, tc.ok)
		}
		c.Disconnect(0)
	}
}

// connectV5 sends an MQTT 5 CONNECT (clean start off, asking for a session
// of expiry seconds), returns the CONNACK and closes the connection.
func connectV5(t *testing.T, addr, clientID, user, pass string, expiry uint32) packets.Packet {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: 5,
		Connect: packets.ConnectParams{
			ProtocolName: []byte("MQTT"), ClientIdentifier: clientID, Keepalive: 30,
			UsernameFlag: user != "", Username: []byte(user), PasswordFlag: pass != "", Password: []byte(pass),
		},
		Properties: packets.Properties{SessionExpiryInterval: expiry, SessionExpiryIntervalFlag: true},
	}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	hb, err := br.ReadByte()
	if err != nil {
		t.Fatal(err)
	}
	ack := packets.Packet{ProtocolVersion: 5}
	if err := ack.FixedHeader.Decode(hb); err != nil || ack.FixedHeader.Type != packets.Connack {
		t.Fatalf("first packet: %v, type %d", err, ack.FixedHeader.Type)
	}
	n, err := binary.ReadUvarint(br) // MQTT's remaining length is this varint
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		t.Fatal(err)
	}
	if err := ack.ConnackDecode(body); err != nil {
		t.Fatal(err)
	}
	return ack
}

// TestConnackV5Properties: an MQTT 5 client is told the broker's maximum
// packet size, and an anonymous one that its session ends with the
// connection though it asked for an hour; a named user keeps its hour.
func TestConnackV5Properties(t *testing.T) {
	b := authBroker(t, auth.AnonLocal, Config{MaxPacketSize: 32 << 10})
	anon := connectV5(t, b.Addr().String(), "v5-anon", "", "", 3600)
	if anon.ReasonCode != 0 || anon.Properties.MaximumPacketSize != 32<<10 {
		t.Errorf("anonymous CONNACK: code %#x, maximum packet size %d; want 0, %d", anon.ReasonCode, anon.Properties.MaximumPacketSize, 32<<10)
	}
	if !anon.Properties.SessionExpiryIntervalFlag || anon.Properties.SessionExpiryInterval != 0 {
		t.Errorf("anonymous CONNACK session expiry: %d (set %v), want 0 (set)", anon.Properties.SessionExpiryInterval, anon.Properties.SessionExpiryIntervalFlag)
	}
	named := connectV5(t, b.Addr().String(), "v5-otto", "otto", "pwo", 3600)
	if named.ReasonCode != 0 || named.Properties.MaximumPacketSize != 32<<10 || named.Properties.SessionExpiryIntervalFlag {
		t.Errorf("named CONNACK: code %#x, maximum packet size %d, session expiry set %v (%d); want 0, %d, not set",
			named.ReasonCode, named.Properties.MaximumPacketSize, named.Properties.SessionExpiryIntervalFlag, named.Properties.SessionExpiryInterval, 32<<10)
	}
}
