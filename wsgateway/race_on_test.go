//go:build race

package wsgateway

// raceEnabled: the race detector adds allocations (sync.Pool drops items
// at random), so allocation counts are not checked under it.
const raceEnabled = true
