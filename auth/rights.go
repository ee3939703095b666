package auth

import (
	"slices"
	"strings"

	"switchyard/devices"
)

// MQTT rights. A filter is allowed when it lies below the tree a client is
// given, literally (devices.FilterUnder), so no wildcard can reach outside it.

// CanUseClientID reports whether id may connect with this MQTT client id:
// a device only as one of its board ids; everybody else with any id.
func (a *Authority) CanUseClientID(id Identity, clientID string) bool {
	if id.Role == RoleDevice {
		return slices.Contains(id.IDs, clientID)
	}
	return true
}

// CanPublish reports whether id may publish to topic (also its Will).
func (a *Authority) CanPublish(id Identity, topic string) bool {
	switch {
	case id.Role == RoleAdmin && !id.Anonymous:
		return true
	case strings.HasPrefix(topic, "$"):
		return false
	case id.Anonymous:
		return a.underAnyTree(topic)
	case id.Role == RoleDevice:
		return a.underDevice(id, topic)
	case id.Role == RoleOperator:
		_, k, ok := a.topics.Parse(topic)
		return ok && k == devices.KindLEDSet
	}
	return false
}

// CanSubscribe reports whether id may subscribe to filter (or receive a
// message on a topic, which is a filter without wildcards).
func (a *Authority) CanSubscribe(id Identity, filter string) bool {
	switch {
	case id.Role == RoleAdmin && !id.Anonymous:
		return true
	case strings.HasPrefix(filter, "$"):
		return false // $SYS, and shared subscriptions ($share/...) that could hide a wider filter
	case id.Anonymous:
		return a.underAnyTree(filter)
	case id.Role == RoleDevice:
		return a.underDevice(id, filter)
	case id.Role == RoleViewer, id.Role == RoleOperator:
		return a.topics.Under(filter)
	}
	return false
}

func (a *Authority) underAnyTree(filter string) bool {
	if a.topics.Under(filter) {
		return true
	}
	for _, p := range a.extra {
		if devices.FilterUnder(p, filter) {
			return true
		}
	}
	return false
}

// underDevice: filter lies under P/<one of id's boards>/.
func (a *Authority) underDevice(id Identity, filter string) bool {
	for _, board := range id.IDs {
		if a.topics.UnderDevice(board, filter) {
			return true
		}
	}
	return false
}
