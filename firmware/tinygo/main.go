//go:build tinygo

// Command tinygo is devicefw for ESP32 boards (ESP32-C3, ESP32-S3) built
// with TinyGo: WiFi through espradio (as in espradio v0.3.0's
// examples/mqtt: netlink.Esplink as the netdev, then net.Dial), MQTT
// through board/natiusession, the LED on a machine pin, and the same
// firmware core (switchyard/board) as every other board. Experimental;
// see README.md.
//
// Settings are fixed at build time:
//
//	CGO_CFLAGS_ALLOW=-fno-short-enums tinygo flash -target xiao-esp32c3 -ldflags "-X main.ssid=MyWiFi
//	  -X main.password=secret -X main.broker=192.168.1.10:1883 -X main.id=esp32-kitchen -X main.ledGPIO=3" .
package main

import (
	"context"
	"io"
	"machine"
	"net"
	"strconv"
	"strings"
	"time"

	"tinygo.org/x/drivers/netdev"
	nl "tinygo.org/x/drivers/netlink"
	link "tinygo.org/x/espradio/netlink"

	"switchyard/board"
	"switchyard/board/natiusession"
)

// Build-time settings (-ldflags "-X main.name=value").
var (
	ssid      string
	password  string
	broker    = "192.168.1.10:1883" // host:port of the MQTT broker; several, comma-separated, to fail over between
	id        = "esp32"             // device id, [A-Za-z0-9_-]{1,64}
	prefix    = "devices"
	ledGPIO   = ""      // GPIO number of the LED; empty for none (the state is still reported)
	activeLow = "false" // "true" for an LED wired to the supply (ESP32-CAM)
	model     = "esp32"
	version   = "dev"
)

type pinLED struct {
	pin       machine.Pin
	activeLow bool
}

func (l pinLED) Set(on bool) error {
	l.pin.Set(on != l.activeLow)
	return nil
}

// logger prints to the serial console; board.Logger wants no more.
type logger struct{}

func (logger) Debug(string, ...any)         {}
func (logger) Info(msg string, args ...any) { logLine("INFO ", msg, args) }
func (logger) Warn(msg string, args ...any) { logLine("WARN ", msg, args) }
func logLine(level, msg string, args []any) {
	print(level, msg)
	for i := 0; i+1 < len(args); i += 2 {
		print(" ", args[i].(string), "=")
		switch v := args[i+1].(type) {
		case string:
			print(v)
		case error:
			print(v.Error())
		case time.Duration:
			print(v.String())
		case bool:
			print(v)
		default:
			print("?")
		}
	}
	println()
}

// xorshift jitters the reconnect backoff; seeded by when WiFi came up,
// which differs from board to board.
type xorshift uint64

func (x *xorshift) int63n(n int64) int64 {
	*x ^= *x << 13
	*x ^= *x >> 7
	*x ^= *x << 17
	return int64(uint64(*x)>>1) % n
}

func main() {
	time.Sleep(time.Second) // let the serial console attach
	// A GPIO number rather than machine.LED: several ESP32 boards (the
	// XIAO ESP32C3 among them) have no user LED, and no machine.LED.
	var led board.LED // nil: the core keeps the state in memory
	if ledGPIO != "" {
		n, err := strconv.Atoi(ledGPIO)
		if err != nil || n < 0 || n > 48 {
			println("ERROR ledGPIO", ledGPIO, "is not a GPIO number")
			return
		}
		pin := machine.Pin(n)
		pin.Configure(machine.PinConfig{Mode: machine.PinOutput})
		l := pinLED{pin: pin, activeLow: activeLow == "true"}
		_ = l.Set(false)
		led = l
	}

	radio := link.Esplink{}
	netdev.UseNetdev(&radio)
	for {
		err := radio.NetConnect(&nl.ConnectParams{Ssid: ssid, Passphrase: password})
		if err == nil {
			break
		}
		println("WARN wifi:", err.Error())
		time.Sleep(5 * time.Second)
	}
	ip := ""
	if addr, err := radio.Addr(); err == nil {
		ip = addr.String()
	}
	println("INFO wifi up, ip", ip)

	seed := xorshift(time.Now().UnixNano() | 1)
	// One session per broker; the core fails over between them.
	var brokers []board.Broker
	for _, addr := range strings.Split(broker, ",") {
		addr = strings.TrimSpace(addr)
		sess := natiusession.New(func(ctx context.Context) (io.ReadWriteCloser, error) {
			return net.Dial("tcp", addr)
		})
		brokers = append(brokers, board.Broker{URL: "tcp://" + addr, Session: sess})
	}
	b, err := board.New(board.Config{
		ID:       id,
		Prefix:   prefix,
		Firmware: "devicefw-tinygo " + version,
		Model:    model,
		IP:       ip,
		LED:      led,
		Brokers:  brokers,
		Log:      logger{},
		Rand:     seed.int63n,
	})
	if err != nil {
		println("ERROR", err.Error())
		return
	}
	_ = b.Run(context.Background()) // runs for ever; a reset is the only stop
}
