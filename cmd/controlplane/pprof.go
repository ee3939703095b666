//go:build pprof

package main

// Built with -tags pprof (never by default), the binary serves
// net/http/pprof on the loopback address in SWITCHYARD_PPROF (for example
// 127.0.0.1:6060) so a benchmark run can be profiled:
//
//	go build -tags pprof -o bin/controlplane-pprof ./cmd/controlplane
//	SWITCHYARD_PPROF=127.0.0.1:6060 bin/controlplane-pprof --config config.yaml
//	go tool pprof -seconds 10 http://127.0.0.1:6060/debug/pprof/profile

import (
	"net"
	"net/http"
	_ "net/http/pprof" // registers on http.DefaultServeMux
	"os"
)

func init() {
	addr := os.Getenv("SWITCHYARD_PPROF")
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		os.Stderr.WriteString("controlplane: pprof: " + err.Error() + "\n")
		os.Exit(1)
	}
	go http.Serve(ln, nil) // ends with the process: a profiling build only
}
