// Package idlemem measures, in benchmarks, the memory a server in the same
// process holds for each idle connection.
package idlemem

import (
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
)

// PerConn opens b.N connections with open (it dials and completes whatever
// exchange leaves the connection idle on the server), keeps them all open,
// and reports the growth of the process's heap and goroutine stacks per
// connection, after a GC, as heap-KiB/<unit> and stack-KiB/<unit>, and
// what was allocated per connection on the way, garbage included, as
// alloc-KiB/<unit> (garbage is not held, but until a GC collects it the
// process's RSS carries it). The connections are closed when it returns.
// open should hold nothing of its own beyond the returned connection, or
// it is counted too.
func PerConn(b *testing.B, unit string, open func(i int) (net.Conn, error)) {
	b.Helper()
	runtime.GC()
	g0 := runtime.NumGoroutine()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	conns := make([]net.Conn, 0, b.N)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range b.N {
		c, err := open(i)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	if path := os.Getenv("IDLEMEM_HEAPPROFILE"); path != "" {
		// What the connections hold, by allocation site (run with
		// -memprofilerate 1 for every allocation).
		if f, err := os.Create(path); err == nil {
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	per := float64(b.N) * 1024
	b.ReportMetric(float64(int64(m1.HeapInuse)-int64(m0.HeapInuse))/per, "heap-KiB/"+unit)
	b.ReportMetric(float64(int64(m1.StackInuse)-int64(m0.StackInuse))/per, "stack-KiB/"+unit)
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/per, "alloc-KiB/"+unit)
	b.ReportMetric(float64(runtime.NumGoroutine()-g0)/float64(b.N), "goroutines/"+unit)
}
