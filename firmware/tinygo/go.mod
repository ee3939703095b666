module switchyard/firmware/tinygo

go 1.24

// tinygo.org/x/espradio and tinygo.org/x/drivers are not listed: espradio
// is not served by the Go module proxy this project builds with. Add them
// on a machine with TinyGo (see README.md):
//
//	go get tinygo.org/x/espradio@latest tinygo.org/x/drivers@latest

require (
	github.com/soypat/natiu-mqtt v0.6.0
	switchyard v0.0.0-00010101000000-000000000000
)

replace switchyard => ../..
