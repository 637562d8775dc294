/**
 * The resource types the fixture API server serves. A real kube-apiserver
 * cannot be installed on the test machines, so the fixture knows each type's
 * group, version, plural, kind, scope and whether it has a status subresource,
 * as the real server learns them from its built-in types and CRDs.
 */

export interface ResourceType {
  /** '' for the core group. */
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
  /** With a status subresource, PUT on the object ignores `status`, and PUT on `/status` changes only it. */
  statusSubresource: boolean;
}

export const FIXTURE_RESOURCES: readonly ResourceType[] = [
  { group: '', version: 'v1', plural: 'nodes', kind: 'Node', namespaced: false, statusSubresource: true },
  {
    group: '',
    version: 'v1',
    plural: 'namespaces',
    kind: 'Namespace',
    namespaced: false,
    statusSubresource: true,
  },
  {
    group: '',
    version: 'v1',
    plural: 'services',
    kind: 'Service',
    namespaced: true,
    statusSubresource: true,
  },
  {
    group: '',
    version: 'v1',
    plural: 'endpoints',
    kind: 'Endpoints',
    namespaced: true,
    statusSubresource: false,
  },
  { group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true, statusSubresource: true },
  { group: '', version: 'v1', plural: 'events', kind: 'Event', namespaced: true, statusSubresource: false },
  {
    group: 'discovery.k8s.io',
    version: 'v1',
    plural: 'endpointslices',
    kind: 'EndpointSlice',
    namespaced: true,
    statusSubresource: false,
  },
  {
    group: 'coordination.k8s.io',
    version: 'v1',
    plural: 'leases',
    kind: 'Lease',
    namespaced: true,
    statusSubresource: false,
  },
  {
    group: 'cilium.io',
    version: 'v2',
    plural: 'ciliumclusterwidenetworkpolicies',
    kind: 'CiliumClusterwideNetworkPolicy',
    namespaced: false,
    statusSubresource: true,
  },
  {
    group: 'cilium.io',
    version: 'v2alpha1',
    plural: 'ciliuml2announcementpolicies',
    kind: 'CiliumL2AnnouncementPolicy',
    namespaced: false,
    statusSubresource: true,
  },
  {
    group: 'cilium.io',
    version: 'v2alpha1',
    plural: 'ciliumloadbalancerippools',
    kind: 'CiliumLoadBalancerIPPool',
    namespaced: false,
    statusSubresource: true,
  },
  {
    group: 'metallb.io',
    version: 'v1beta1',
    plural: 'ipaddresspools',
    kind: 'IPAddressPool',
    namespaced: true,
    statusSubresource: true,
  },
  {
    group: 'metallb.io',
    version: 'v1beta1',
    plural: 'l2advertisements',
    kind: 'L2Advertisement',
    namespaced: true,
    statusSubresource: false,
  },
  {
    group: 'metallb.io',
    version: 'v1beta2',
    plural: 'bgppeers',
    kind: 'BGPPeer',
    namespaced: true,
    statusSubresource: false,
  },
  {
    group: 'metallb.io',
    version: 'v1beta1',
    plural: 'bgpadvertisements',
    kind: 'BGPAdvertisement',
    namespaced: true,
    statusSubresource: false,
  },
  {
    group: 'nodewarden.io',
    version: 'v1alpha1',
    plural: 'l2announcements',
    kind: 'L2Announcement',
    namespaced: false,
    statusSubresource: true,
  },
  {
    group: 'nodewarden.io',
    version: 'v1alpha1',
    plural: 'loadbalancerpools',
    kind: 'LoadBalancerPool',
    namespaced: false,
    statusSubresource: true,
  },
];

export function apiVersionOf(type: ResourceType): string {
  return type.group ? `${type.group}/${type.version}` : type.version;
}
