// Package history is the fleet's past as records: each board's events
// (online, offline and why, LED changes and who caused them, commands and
// their outcome, update states, firmware changes, forget), its count
// sampled once a step, and the audit log of what people did.
//
// It is the domain half of the history: types, the count sampler and the
// rules of the API's queries, with time passed in, standard library only
// and no goroutines. Writing the records in batches off the gateway's hot
// path is package recorder's; storing them is package store's.
package history
