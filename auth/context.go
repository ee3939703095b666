package auth

import "context"

// ctxKey is the context key of the request's Identity.
type ctxKey struct{}

// NewContext returns ctx carrying id: the gateway puts the identity of an
// HTTP request there before its handler runs.
func NewContext(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the identity NewContext put in ctx, and whether
// there is one.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}
