package file

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/internal/model"
)

// TestDecodeChangesDecodesAsTheProvider: every demo file decoded as a
// change file gives the very objects (sources included) the provider
// loads from it.
func TestDecodeChangesDecodesAsTheProvider(t *testing.T) {
	files, err := filepath.Glob("../../hack/demo/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			dir := t.TempDir()
			writeFile(t, dir, name, string(data))
			p, _ := newProvider(t, dir)
			require.NoError(t, p.Load())
			snap := p.Store.Current()

			changes, notes := DecodeChanges(name, data, ChangeOptions{})
			require.Empty(t, notes)
			require.NotEmpty(t, changes)
			for _, c := range changes {
				require.Nil(t, c.Err, c.Key())
				got, ok := snap.Object(c.Kind, c.Namespace, c.Name)
				require.True(t, ok, c.Key())
				assert.Equal(t, got, c.Object, c.Key())
			}
		})
	}
}

const alsMesh = `apiVersion: v1
kind: ConfigMap
metadata:
  name: istio
  namespace: istio-system
data:
  mesh: |
    extensionProviders:
    - name: als
      envoyHttpAls:
        service: als.monitoring.svc.cluster.local
        port: 9000
    defaultProviders:
      accessLogging: [als]
`

// TestDecodeChangesMeshConfigMap: the mesh ConfigMap becomes the
// MeshConfig change the kube provider would make; another ConfigMap, and
// a mesh key that does not parse, are errors naming the ConfigMap.
func TestDecodeChangesMeshConfigMap(t *testing.T) {
	changes, notes := DecodeChanges("c.yaml", []byte(alsMesh), ChangeOptions{})
	require.Empty(t, notes)
	require.Len(t, changes, 1)
	c := changes[0]
	assert.Equal(t, "MeshConfig//mesh", c.Key())
	mc := c.Object.(*model.MeshConfig)
	assert.Equal(t, "c.yaml#1", mc.Source)
	assert.Equal(t, []string{"als"}, mc.Spec.GetDefaultProviders().GetAccessLogging())
	assert.Equal(t, "istio-system", mc.Spec.GetRootNamespace(), "istiod's defaults are filled")

	other := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: shop}\ndata: {a: b}\n"
	bad := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio}\ndata:\n  mesh: 'defaultProviders: 7'\n"
	changes, _ = DecodeChanges("c.yaml", []byte(other+"---\n"+bad), ChangeOptions{})
	require.Len(t, changes, 2)
	assert.Equal(t, "ConfigMap/shop/app", changes[0].Key())
	assert.Contains(t, changes[0].Err.Message, "meshd reads no ConfigMap but the mesh config istio-system/istio")
	assert.Equal(t, "MeshConfig//mesh", changes[1].Key())
	assert.Equal(t, model.ObjectError{Kind: "ConfigMap", Namespace: "istio-system", Name: "istio", Source: "c.yaml#2",
		Field: "data.mesh", Message: changes[1].Err.Message}, *changes[1].Err)
}

// TestDecodeChangesErrorsAndDelete: a broken document is an error change
// with its source, a duplicate is reported as the provider reports it,
// and with Delete every document names the object to delete.
func TestDecodeChangesErrorsAndDelete(t *testing.T) {
	data, err := os.ReadFile("../../hack/demo/shop-reviews-routing.yaml")
	require.NoError(t, err)
	broken := "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x, namespace: shop}\nspec: {hostz: [a]}\n"
	changes, _ := DecodeChanges("c.yaml", append(append(data, "\n---\n"+broken+"---\n"...), data...), ChangeOptions{})
	keys := map[string]*model.ObjectError{}
	for _, c := range changes {
		keys[c.Key()] = c.Err
	}
	require.Contains(t, keys, "VirtualService/shop/x")
	assert.Equal(t, "spec.hostz", keys["VirtualService/shop/x"].Field)
	assert.Equal(t, "c.yaml#3", keys["VirtualService/shop/x"].Source)
	require.Contains(t, keys, "//c.yaml#4", "the second copy of the DestinationRule is reported by source")
	assert.Contains(t, keys["//c.yaml#4"].Message, "duplicate object: already defined in c.yaml#1")

	changes, notes := DecodeChanges("c.yaml", append(append(data, "\n---\n"...), alsMesh...), ChangeOptions{Delete: true})
	require.Len(t, changes, 2)
	for _, c := range changes {
		assert.Nil(t, c.Object)
		assert.Nil(t, c.Err)
	}
	assert.Equal(t, []string{"DestinationRule/shop/reviews", "VirtualService/shop/reviews"}, []string{changes[0].Key(), changes[1].Key()})
	require.Len(t, notes, 1)
	assert.Contains(t, notes[0], "changes nothing: meshd keeps the last mesh config")
}
