package loadgen

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// mqttWS is a minimal MQTT 3.1.1 client over WebSocket: what a browser
// speaking MQTT to a broker's websockets listener does (CONNECT, SUBSCRIBE at
// QoS 0, PUBLISH at QoS 0, PINGREQ), and no more. It exists so a thousand
// such browsers cost the load generator about what a thousand /ws browsers
// do, keeping the comparison with Mosquitto fair.
type mqttWS struct {
	conn *websocket.Conn
	r    *bufio.Reader
	wmu  sync.Mutex // guards writes on conn
}

// wsStream reads the binary WebSocket messages of conn as one byte stream:
// MQTT packets may span or share WebSocket frames.
type wsStream struct {
	conn *websocket.Conn
	cur  io.Reader
}

func (s *wsStream) Read(p []byte) (int, error) {
	for {
		if s.cur == nil {
			_, r, err := s.conn.NextReader()
			if err != nil {
				return 0, err
			}
			s.cur = r
		}
		n, err := s.cur.Read(p)
		if errors.Is(err, io.EOF) {
			s.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

// dialMQTTWS connects to url (ws://host:port/path) as clientID, through
// dial (nil: the default), and waits for the CONNACK.
func dialMQTTWS(url, clientID string, timeout time.Duration, dial func(context.Context, string, string) (net.Conn, error)) (*mqttWS, error) {
	d := websocket.Dialer{HandshakeTimeout: timeout, Subprotocols: []string{"mqtt"}, NetDialContext: dial}
	conn, _, err := d.Dial(url, http.Header{})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	c := &mqttWS{conn: conn}
	c.r = bufio.NewReaderSize(&wsStream{conn: conn}, 16<<10)
	if err := c.write(0x10, connectBody(clientID, 300)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("mqtt connect: %w", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	typ, body, err := c.readPacket()
	_ = conn.SetReadDeadline(time.Time{})
	switch {
	case err != nil:
		conn.Close()
		return nil, fmt.Errorf("mqtt connack: %w", err)
	case typ != 0x20 || len(body) < 2 || body[1] != 0:
		conn.Close()
		return nil, fmt.Errorf("mqtt connack: refused (type %#x, body %x)", typ, body)
	}
	return c, nil
}

// connectBody is a CONNECT's body: protocol "MQTT" level 4, clean
// session, keepalive seconds (0: none).
func connectBody(clientID string, keepalive uint16) []byte {
	var vh []byte
	vh = appendMQTTString(vh, "MQTT")
	vh = append(vh, 4, 0x02)
	vh = binary.BigEndian.AppendUint16(vh, keepalive)
	return appendMQTTString(vh, clientID)
}

// subscribeBody is a SUBSCRIBE's body: filter at QoS 0.
func subscribeBody(filter string) []byte {
	body := []byte{0, 1}
	body = appendMQTTString(body, filter)
	return append(body, 0)
}

// publishBody is a QoS 0 PUBLISH's body.
func publishBody(topic string, payload []byte) []byte {
	return append(appendMQTTString(nil, topic), payload...)
}

// mqttPacket is one packet with fixed header byte h and body.
func mqttPacket(h byte, body []byte) []byte {
	pkt := make([]byte, 0, len(body)+5)
	pkt = append(pkt, h)
	n := len(body)
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		pkt = append(pkt, b)
		if n == 0 {
			break
		}
	}
	return append(pkt, body...)
}

func appendMQTTString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// write sends one packet with fixed header byte h and body.
func (c *mqttWS) write(h byte, body []byte) error {
	pkt := mqttPacket(h, body)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.conn.WriteMessage(websocket.BinaryMessage, pkt)
}

// subscribe sends SUBSCRIBE for filter at QoS 0; the SUBACK arrives through
// readPacket.
func (c *mqttWS) subscribe(filter string) error {
	return c.write(0x82, subscribeBody(filter))
}

// publish sends payload to topic at QoS 0.
func (c *mqttWS) publish(topic string, payload []byte) error {
	return c.write(0x30, publishBody(topic, payload))
}

// ping sends PINGREQ.
func (c *mqttWS) ping() error { return c.write(0xc0, nil) }

// readPacket reads one packet: its type (high nibble of the fixed header,
// shifted back into place) and body. The body is valid until the next call.
func (c *mqttWS) readPacket() (byte, []byte, error) {
	h, err := c.r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mult := 0, 1
	for i := 0; ; i++ {
		b, err := c.r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(b&0x7f) * mult
		mult *= 128
		if b&0x80 == 0 {
			break
		}
		if i == 3 {
			return 0, nil, errors.New("mqtt: malformed remaining length")
		}
	}
	body, err := c.r.Peek(n)
	if err != nil {
		if !errors.Is(err, bufio.ErrBufferFull) {
			return 0, nil, err
		}
		body = make([]byte, n)
		if _, err := io.ReadFull(c.r, body); err != nil {
			return 0, nil, err
		}
		return h, body, nil
	}
	_, _ = c.r.Discard(n)
	return h, body, nil
}

// parsePublish splits a PUBLISH packet (fixed header h, body) into topic
// and payload.
func parsePublish(h byte, body []byte) (topic, payload []byte, ok bool) {
	if len(body) < 2 {
		return nil, nil, false
	}
	tl := int(binary.BigEndian.Uint16(body))
	if len(body) < 2+tl {
		return nil, nil, false
	}
	topic, rest := body[2:2+tl], body[2+tl:]
	if (h>>1)&3 > 0 { // QoS 1 or 2: a packet id follows the topic
		if len(rest) < 2 {
			return nil, nil, false
		}
		rest = rest[2:]
	}
	return topic, rest, true
}

func (c *mqttWS) close() error { return c.conn.Close() }
