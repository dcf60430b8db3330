package manifest

import (
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Names meshd reads or writes that the roles name.
const (
	// RootCertConfigMap is the ConfigMap meshd keeps in every namespace.
	RootCertConfigMap = "istio-ca-root-cert"
	// PluggedCASecret and SelfSignedCASecret are the mesh CA's Secrets in
	// meshd's namespace (internal/ca).
	PluggedCASecret    = "cacerts"
	SelfSignedCASecret = "istio-ca-secret"
)

// Verbs of an informer (list, then watch) and of read-modify-write.
var (
	listWatch = []string{"list", "watch"}
)

// clusterRules are exactly the cluster-wide calls meshd makes, each with
// where it makes them.
func (o Options) clusterRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		// discovery/kube's informers: the registry (pods are trimmed to
		// labels, IP and service account) and the Istio API.
		{APIGroups: []string{""}, Resources: []string{"namespaces", "pods", "services"}, Verbs: listWatch},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: listWatch},
		{APIGroups: []string{"networking.istio.io"}, Verbs: listWatch, Resources: []string{
			"destinationrules", "gateways", "serviceentries", "sidecars", "virtualservices"}},
		{APIGroups: []string{"security.istio.io"}, Verbs: listWatch, Resources: []string{
			"authorizationpolicies", "peerauthentications", "requestauthentications"}},
		// Gateway credentialName Secrets (discovery/kube/secrets.go): listed
		// and watched, never read one by one; trimmed to their TLS keys.
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: listWatch},
		// Warning Events on rejected config (discovery/kube/events.go).
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch", "update"}},
		// The mesh root in every namespace (internal/ca/rootcert*.go): its
		// informer lists with fieldSelector metadata.name=istio-ca-root-cert,
		// which RBAC checks against resourceNames. Create cannot be
		// restricted by name.
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{RootCertConfigMap},
			Verbs: []string{"get", "list", "watch", "update"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"create"}},
		// Callers' service-account tokens on the secure port (internal/ca/tokenreview.go).
		{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
		// The injection webhook (cmd/meshd/inject.go): with native sidecars
		// on auto (the default) it reads the nodes' kubelet versions.
		{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: listWatch},
		// Its caBundle (internal/inject/cabundle.go): meshd reads, watches
		// (fieldSelector metadata.name) and patches its own webhook
		// configuration, and no other.
		{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"},
			ResourceNames: []string{o.WebhookConfigName()}, Verbs: []string{"get", "list", "watch", "patch"}},
	}
}

// namespaceRules are meshd's calls in its own namespace.
func (o Options) namespaceRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		// The mesh CA (internal/ca): the plug-in cacerts Secret, else the
		// self-signed root in istio-ca-secret, created by the first replica.
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{PluggedCASecret, SelfSignedCASecret},
			Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
		// The mesh ConfigMap's informer (discovery/kube) watches the namespace's ConfigMaps.
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: listWatch},
	}
}

func (o Options) serviceAccount() *corev1.ServiceAccount {
	return &corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"),
		ObjectMeta: o.meta(o.ServiceAccountName())}
}

func (o Options) subjects() []rbacv1.Subject {
	return []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: o.ServiceAccountName(), Namespace: o.Namespace}}
}

func (o Options) clusterRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "ClusterRole"),
		ObjectMeta: o.clusterMeta(o.ClusterRoleName()), Rules: o.clusterRules()}
}

func (o Options) clusterRoleBinding() *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
		ObjectMeta: o.clusterMeta(o.ClusterRoleName()),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: o.ClusterRoleName()},
		Subjects:   o.subjects()}
}

func (o Options) role() *rbacv1.Role {
	return &rbacv1.Role{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "Role"),
		ObjectMeta: o.meta(o.ServiceAccountName()), Rules: o.namespaceRules()}
}

func (o Options) roleBinding() *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "RoleBinding"),
		ObjectMeta: o.meta(o.ServiceAccountName()),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: o.ServiceAccountName()},
		Subjects:   o.subjects()}
}

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}
