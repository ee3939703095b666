package update

import (
	"errors"
	"fmt"
)

// jobError is why a job failed or was rolled back: one of the contract's
// error words (devices.UpdateErr*), with detail after a colon.
type jobError struct {
	word   string
	detail string
}

func (e *jobError) Error() string {
	if e.detail == "" {
		return e.word
	}
	return e.word + ": " + e.detail
}

// failure returns a jobError with the contract's word and a detail.
func failure(word, format string, args ...any) error {
	return &jobError{word: word, detail: fmt.Sprintf(format, args...)}
}

// wordOf returns the report error text of err: a jobError's own text, or
// fallback's word with err as detail.
func wordOf(err error, fallback string) string {
	var je *jobError
	if errors.As(err, &je) {
		return je.Error()
	}
	return (&jobError{word: fallback, detail: err.Error()}).Error()
}
