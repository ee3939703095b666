// Package e2e tests Switchyard the way people use it: in a real browser.
//
// The tests build the real controlplane binary, start it on free loopback
// ports, play boards with MQTT clients that follow the wire contract
// (retained status, led and info on connect, a Last Will, a count, led/set
// answered with the new led), and drive Debian's chromium through the
// DevTools protocol (github.com/chromedp/chromedp) against the dashboard and
// the single-board example page. The firmware-update tests run real
// devicefw processes of simulated boards (--sim) instead, since those
// download, verify and restart for real.
//
// A missing chromium skips the tests, except under CI (CI set), where it is
// a failure. E2E_SCALE_DURATION (default 15s, e.g. 5m) sets how long the
// 500-board run measures the page; E2E_SCREENSHOTS=1 makes TestScreenshots
// rewrite docs/dashboard.png and docs/dashboard-phone.png,
// TestScreenshotsUpdates docs/updates.png and TestScreenshotsAddBoard
// docs/add-board.png. The package has no code outside its tests.
package e2e
