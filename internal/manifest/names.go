package manifest

// Names of the generated objects. With a revision each gets istiod's
// "-<rev>" suffix.

// ServiceAccountName is meshd's ServiceAccount, also the name of its
// Deployment, PodDisruptionBudget, Role and RoleBinding.
func (o Options) ServiceAccountName() string { return o.name("meshd") }

// ClusterRoleName names the ClusterRole and ClusterRoleBinding; cluster
// scoped, so it carries the namespace as istiod's (istiod-clusterrole-<ns>).
func (o Options) ClusterRoleName() string { return o.name("meshd") + "-" + o.Namespace }

// ServiceName is the Service sidecars dial: istiod, or istiod-<rev>.
func (o Options) ServiceName() string { return o.name("istiod") }

// MeshConfigMapName is the mesh ConfigMap: istio, or istio-<rev>.
func (o Options) MeshConfigMapName() string { return o.name("istio") }

// WebhookConfigName is the MutatingWebhookConfiguration's name, istiod's:
// istio-sidecar-injector[-<rev>], with "-<ns>" outside istio-system.
func (o Options) WebhookConfigName() string {
	n := o.name("istio-sidecar-injector")
	if o.Namespace != DefaultNamespace {
		n += "-" + o.Namespace
	}
	return n
}

// RevisionLabel is the value of the istio.io/rev label: the revision, or
// "default".
func (o Options) RevisionLabel() string {
	if o.Revision == "" {
		return "default"
	}
	return o.Revision
}

// DiscoveryAddress is the address sidecars dial: the Service's secure port.
func (o Options) DiscoveryAddress() string {
	return o.ServiceName() + "." + o.Namespace + ".svc:15012"
}

func (o Options) name(base string) string {
	if o.Revision == "" {
		return base
	}
	return base + "-" + o.Revision
}
