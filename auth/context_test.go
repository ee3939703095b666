package auth

import (
	"context"
	"slices"
	"testing"
)

func TestContext(t *testing.T) {
	if id, ok := FromContext(context.Background()); ok {
		t.Errorf("FromContext(Background) = %+v, true; want none", id)
	}
	want := Identity{Name: "board-7", Role: RoleDevice, IDs: []string{"board-7"}}
	ctx := NewContext(context.Background(), want)
	got, ok := FromContext(ctx)
	if !ok || got.Name != want.Name || got.Role != want.Role || !slices.Equal(got.IDs, want.IDs) || got.Anonymous {
		t.Errorf("FromContext = %+v, %v; want %+v, true", got, ok, want)
	}
	// A derived context still carries it; a second NewContext replaces it.
	child, cancel := context.WithCancel(ctx)
	defer cancel()
	if got, ok := FromContext(child); !ok || got.Name != "board-7" {
		t.Errorf("FromContext(child) = %+v, %v", got, ok)
	}
	anon := Identity{Role: RoleOperator, Anonymous: true}
	if got, _ := FromContext(NewContext(child, anon)); got.Role != RoleOperator || !got.Anonymous || got.Name != "" {
		t.Errorf("replaced identity = %+v, want %+v", got, anon)
	}
}
