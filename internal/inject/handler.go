package inject

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxReviewBytes bounds an AdmissionReview body (the API server sends at
// most a few MB).
const maxReviewBytes = 8 << 20

// Native sidecar modes, as ENABLE_NATIVE_SIDECARS.
const (
	NativeTrue  = "true"
	NativeFalse = "false"
	NativeAuto  = "auto"
)

// HandlerOptions configure a Handler.
type HandlerOptions struct {
	// Settings returns the settings in force (the mesh config may change);
	// NativeSidecars is set per pod from NativeMode.
	Settings func() Settings
	// NamespaceLabels, when set, returns the labels of a namespace, to check
	// the webhook configuration's selectors again; nil trusts them (the API
	// server applied them to the namespace's current labels, which an
	// informer may not have seen yet).
	NamespaceLabels func(name string) (map[string]string, error)
	// Nodes lists the cluster's nodes, for NativeMode auto; on error the
	// sidecar is a regular container, as istiod's without node access.
	Nodes func() ([]*corev1.Node, error)
	// NativeMode is true, false or auto.
	NativeMode string
	// FailOpen admits a pod unchanged when injection fails for an internal
	// reason; else (fail closed) it is denied. A Rejection is always denied.
	FailOpen bool
	// Logger receives a line per request that is not a plain injection.
	Logger *slog.Logger
}

// Handler serves the injection webhook: POST of an admission/v1
// AdmissionReview of a pod CREATE, answered with the AdmissionReview
// carrying Inject's JSONPatch, or a denial naming the problem.
type Handler struct{ o HandlerOptions }

// NewHandler returns a Handler.
func NewHandler(o HandlerOptions) *Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Handler{o: o}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		http.Error(w, "invalid Content-Type "+ct+", want application/json", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxReviewBytes+1))
	if err != nil || len(body) == 0 || len(body) > maxReviewBytes {
		http.Error(w, "missing, unreadable or oversized AdmissionReview", http.StatusBadRequest)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		http.Error(w, fmt.Sprintf("not an admission/v1 AdmissionReview: %v", err), http.StatusBadRequest)
		return
	}
	resp := h.Review(review.Request)
	resp.UID = review.Request.UID
	out := admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Response: resp}
	b, err := json.Marshal(out)
	if err != nil {
		http.Error(w, "encoding the response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// Review answers one admission request.
func (h *Handler) Review(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	log := h.o.Logger.With("namespace", req.Namespace, "name", req.Name, "uid", req.UID)
	if req.Kind.Kind != "Pod" || req.Operation != admissionv1.Create {
		return &admissionv1.AdmissionResponse{Allowed: true} // not ours: leave it alone
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return h.failure(log, fmt.Errorf("decoding the pod: %w", err))
	}
	pod.ManagedFields = nil // large, and injection does not read it
	if pod.Namespace == "" {
		pod.Namespace = req.Namespace
	}
	res, err := h.inject(&pod)
	var rej Rejection
	switch {
	case errors.As(err, &rej):
		log.Info("pod refused by sidecar injection", "reason", rej.Error())
		return deny(http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, "sidecar injection: "+rej.Error())
	case err != nil:
		return h.failure(log, err)
	case res.Patch == nil:
		log.Debug("sidecar not injected", "reason", res.Reason)
		return &admissionv1.AdmissionResponse{Allowed: true}
	}
	log.Debug("sidecar injected", "patchBytes", len(res.Patch))
	pt := admissionv1.PatchTypeJSONPatch
	return &admissionv1.AdmissionResponse{Allowed: true, Patch: res.Patch, PatchType: &pt}
}

// inject gathers the pod's namespace labels and the settings and calls
// Inject.
func (h *Handler) inject(pod *corev1.Pod) (Result, error) {
	var labels map[string]string
	if h.o.NamespaceLabels != nil {
		var err error
		if labels, err = h.o.NamespaceLabels(pod.Namespace); err != nil {
			return Result{}, fmt.Errorf("reading namespace %s: %w", pod.Namespace, err)
		}
	}
	s := h.o.Settings()
	switch h.o.NativeMode {
	case NativeTrue:
		s.NativeSidecars = true
	case NativeAuto:
		nodes, err := h.o.Nodes()
		if err != nil { // as istiod without a node client: no native sidecars
			h.o.Logger.Warn("native sidecar detection: nodes unknown, injecting a regular sidecar", "error", err)
			s.NativeSidecars = false
			break
		}
		s.NativeSidecars = NativeSidecarsSupported(nodes, pod.Spec.NodeName)
	default:
		s.NativeSidecars = false
	}
	return Inject(Input{Pod: pod, NamespaceLabels: labels}, s)
}

// failure answers an internal error by the failure policy.
func (h *Handler) failure(log *slog.Logger, err error) *admissionv1.AdmissionResponse {
	if h.o.FailOpen {
		log.Error("sidecar injection failed; pod admitted without a sidecar (fail open)", "error", err)
		return &admissionv1.AdmissionResponse{Allowed: true,
			Warnings: []string{"meshd: sidecar injection failed, pod admitted without a sidecar: " + err.Error()}}
	}
	log.Error("sidecar injection failed; pod denied (fail closed)", "error", err)
	return deny(http.StatusInternalServerError, metav1.StatusReasonInternalError, "sidecar injection failed: "+err.Error())
}

func deny(code int32, reason metav1.StatusReason, msg string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{
		Status: metav1.StatusFailure, Message: msg, Code: code, Reason: reason}}
}
