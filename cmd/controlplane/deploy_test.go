package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestGrafanaDashboardMatchesMetrics checks that every metric the example
// Grafana dashboard in deploy/ queries is one the binary exports.
func TestGrafanaDashboardMatchesMetrics(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	p := start(t, testConfig(t, ""))
	resp, err := http.Get(p.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	name := regexp.MustCompile(`\b(switchyard|process|go)_[a-z_]+`)
	n := 0
	for _, panel := range dash.Panels {
		for _, tg := range panel.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				n++
				if !strings.Contains(string(body), "\n"+m+" ") && !strings.Contains(string(body), "\n"+m+"{") {
					t.Errorf("dashboard queries %s, which /metrics does not export", m)
				}
			}
		}
	}
	if n < 10 {
		t.Errorf("only %d metrics found in the dashboard", n)
	}
	p.stop()
}
