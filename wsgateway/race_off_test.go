//go:build !race

package wsgateway

const raceEnabled = false
