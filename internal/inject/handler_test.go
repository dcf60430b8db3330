package inject

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

func testHandler(o HandlerOptions) *Handler {
	if o.Settings == nil {
		o.Settings = testBase
	}
	if o.Nodes == nil {
		o.Nodes = func() ([]*corev1.Node, error) { return nil, nil }
	}
	if o.NativeMode == "" {
		o.NativeMode = NativeFalse
	}
	return NewHandler(o)
}

func review(t *testing.T, pod *corev1.Pod) []byte {
	raw, err := json.Marshal(pod)
	require.NoError(t, err)
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: types.UID("req-1"), Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Namespace: "bank", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}}})
	require.NoError(t, err)
	return b
}

func post(t *testing.T, h http.Handler, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/inject", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var out admissionv1.AdmissionReview
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
	assert.Equal(t, "AdmissionReview", out.Kind)
	require.NotNil(t, out.Response)
	assert.Equal(t, types.UID("req-1"), out.Response.UID)
	return out.Response
}

func appPod(annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "app", Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "bank/app:1"}}}}
}

func TestHandlerInjects(t *testing.T) {
	resp := post(t, testHandler(HandlerOptions{}), review(t, appPod(nil)))
	assert.True(t, resp.Allowed)
	require.NotNil(t, resp.PatchType)
	assert.Equal(t, admissionv1.PatchTypeJSONPatch, *resp.PatchType)
	assert.Contains(t, string(resp.Patch), `"name":"istio-proxy"`)
	assert.Contains(t, string(resp.Patch), `"name":"istio-init"`, "native sidecars off")
}

func TestHandlerRejectsBadAnnotations(t *testing.T) {
	resp := post(t, testHandler(HandlerOptions{FailOpen: true}), review(t, appPod(map[string]string{AnnoProxyCPU: "lots"})))
	assert.False(t, resp.Allowed, "a bad annotation is denied even when failing open")
	require.NotNil(t, resp.Result)
	assert.Equal(t, `sidecar injection: annotation sidecar.istio.io/proxyCPU "lots": want a Kubernetes quantity such as 100m or 128Mi`,
		resp.Result.Message)
	assert.Nil(t, resp.Patch)
}

func TestHandlerFailurePolicy(t *testing.T) {
	broken := func(string) (map[string]string, error) { return nil, errors.New("informer not synced") }
	resp := post(t, testHandler(HandlerOptions{NamespaceLabels: broken}), review(t, appPod(nil)))
	assert.False(t, resp.Allowed, "fail closed")
	assert.Contains(t, resp.Result.Message, "informer not synced")

	resp = post(t, testHandler(HandlerOptions{NamespaceLabels: broken, FailOpen: true}), review(t, appPod(nil)))
	assert.True(t, resp.Allowed, "fail open")
	assert.Nil(t, resp.Patch, "admitted without a sidecar")
	assert.NotEmpty(t, resp.Warnings)
}

func TestHandlerNativeAuto(t *testing.T) {
	node := func(name, v string) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
		n.Status.NodeInfo.KubeletVersion = v
		return n
	}
	for name, c := range map[string]struct {
		nodes  []*corev1.Node
		native bool
	}{
		"no nodes (as istiod)": {nil, true},
		"all 1.33+":            {[]*corev1.Node{node("a", "v1.33.1"), node("b", "v1.34.0-eks-1")}, true},
		"one old node":         {[]*corev1.Node{node("a", "v1.33.1"), node("b", "v1.32.9")}, false},
		"unreadable version":   {[]*corev1.Node{node("a", "dev")}, false},
	} {
		t.Run(name, func(t *testing.T) {
			h := testHandler(HandlerOptions{NativeMode: NativeAuto, Nodes: func() ([]*corev1.Node, error) { return c.nodes, nil }})
			resp := post(t, h, review(t, appPod(nil)))
			require.True(t, resp.Allowed)
			assert.Equal(t, c.native, bytes.Contains(resp.Patch, []byte(`"restartPolicy":"Always"`)))
		})
	}
	assert.True(t, NativeSidecarsSupported([]*corev1.Node{node("old", "v1.30.0"), node("new", "v1.33.0")}, "new"),
		"the pod's own node decides when it is known")
}

func TestHandlerLeavesOthersAlone(t *testing.T) {
	h := testHandler(HandlerOptions{})
	var r admissionv1.AdmissionReview
	require.NoError(t, json.Unmarshal(review(t, appPod(nil)), &r))
	r.Request.Operation = admissionv1.Update
	b, _ := json.Marshal(r)
	resp := post(t, h, b)
	assert.True(t, resp.Allowed)
	assert.Nil(t, resp.Patch)

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/inject", bytes.NewReader(review(t, appPod(nil))))
	req.Header.Set("Content-Type", "text/plain")
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusUnsupportedMediaType, rec.Code)
	rec = httptest.NewRecorder()
	req = httptest.NewRequest(http.MethodPost, "/inject", bytes.NewReader([]byte("{}")))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusBadRequest, rec.Code)
}

func TestHandlerChecksNamespaceLabelsWhenAsked(t *testing.T) {
	labels := map[string]string{}
	h := testHandler(HandlerOptions{NamespaceLabels: func(string) (map[string]string, error) { return labels, nil }})
	resp := post(t, h, review(t, appPod(nil)))
	assert.True(t, resp.Allowed)
	assert.Nil(t, resp.Patch, "an unlabelled namespace is not injected")
	labels["istio-injection"] = "enabled"
	resp = post(t, h, review(t, appPod(nil)))
	assert.NotNil(t, resp.Patch)
}
