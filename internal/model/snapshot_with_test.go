package model

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networking "istio.io/api/networking/v1"
)

// TestSnapshotWithLeavesStoreAndSnapshotAlone: With derives a new Snapshot
// holding the changes (objects and errors) while the Store's current
// Snapshot, its objects and its subscribers see nothing.
func TestSnapshotWithLeavesStoreAndSnapshotAlone(t *testing.T) {
	store := NewStore()
	vs := func(host string) *Config {
		return &Config{Kind: KindVirtualService, Namespace: "ns", Name: "vs", Spec: &networking.VirtualService{Hosts: []string{host}}}
	}
	old := vs("a")
	cur := store.Apply([]Change{{Kind: KindVirtualService, Namespace: "ns", Name: "vs", Object: old}})
	_ = cur.Configs(KindVirtualService) // build the index, as a push does
	events := 0
	store.Subscribe(func(Event) { events++ })

	next, applied := cur.With([]Change{
		{Kind: KindVirtualService, Namespace: "ns", Name: "vs", Object: vs("b")},
		{Kind: KindDestinationRule, Namespace: "ns", Name: "gone"}, // deleting nothing: not applied
		{Kind: KindSidecar, Namespace: "ns", Name: "bad", Err: &ObjectError{Kind: KindSidecar, Namespace: "ns", Name: "bad", Message: "broken"}},
	})
	require.Len(t, applied, 2)
	assert.Equal(t, cur.Seq+1, next.Seq)
	got, ok := next.Object(KindVirtualService, "ns", "vs")
	require.True(t, ok)
	assert.Equal(t, []string{"b"}, got.(*Config).Spec.(*networking.VirtualService).GetHosts())
	assert.Len(t, next.Errors(), 1)
	assert.Len(t, next.Configs(KindVirtualService), 1)

	assert.Same(t, cur, store.Current(), "With does not publish")
	assert.Zero(t, events, "With notifies no subscriber")
	still, _ := cur.Object(KindVirtualService, "ns", "vs")
	assert.Same(t, old, still, "the current Snapshot is unchanged")
	assert.Empty(t, cur.Errors())
	assert.Same(t, old, cur.Configs(KindVirtualService)[0])
}
