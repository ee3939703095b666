module switchyard/firmware/tinygo

go 1.26.8

// drivers v0.36.0 rather than the pseudo-version espradio v0.3.0 asks
// for (v0.35.1-0.20260604174950-1d695a231aef, whose go.mod is the same):
// the Go module proxy does not serve that one. See README.md.

require (
	switchyard v0.0.0-00010101000000-000000000000
	tinygo.org/x/drivers v0.36.0
	tinygo.org/x/espradio v0.3.0
)

require (
	github.com/soypat/lneto v0.3.2 // indirect
	github.com/soypat/natiu-mqtt v0.7.0 // indirect
)

replace switchyard => ../..
