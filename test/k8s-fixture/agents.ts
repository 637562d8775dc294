/** Heartbeat + ownership agents of several nodes against one fixture, as the daemons would run them. */
import { KubeClient } from '../../daemon/sources/kubernetes/client.js';
import { Heartbeat } from '../../daemon/sources/kubernetes/heartbeat.js';
import { ClusterOwnership } from '../../daemon/sources/kubernetes/ownership.js';
import { HEARTBEAT_LABEL, projectHeartbeat } from '../../daemon/sources/kubernetes/projections.js';
import { Reflector } from '../../daemon/sources/kubernetes/reflector.js';
import type { HeartbeatLease } from '../../model/cluster.js';
import { writeFixtureKubeconfig } from './kubeconfig.js';

export interface NodeAgent {
  name: string;
  heartbeat: Heartbeat;
  leases: Reflector<HeartbeatLease>;
  ownership: ClusterOwnership;
  stop(): Promise<void>;
}

export function startNodeAgent(
  server: string,
  token: string,
  name: string,
  timing: { renewIntervalMs: number; expirySeconds: number },
): NodeAgent {
  const kubeconfig = writeFixtureKubeconfig(server, token);
  const client = () => new KubeClient({ kubeconfig, qps: 50, burst: 100 });
  const heartbeat = new Heartbeat({
    client: client(),
    namespace: 'nodewarden',
    nodeName: name,
    ...timing,
    interfacesUp: () => ['eth0'],
  });
  const leases = new Reflector<HeartbeatLease>({
    name: 'heartbeats',
    client: client(),
    path: '/apis/coordination.k8s.io/v1/namespaces/nodewarden/leases',
    labelSelector: HEARTBEAT_LABEL,
    project: projectHeartbeat,
    idleTimeoutMs: 5000,
    backoffBaseMs: 50,
    backoffMaxMs: 500,
  });
  const ownership = new ClusterOwnership({ nodeName: name, heartbeat, leases });
  heartbeat.start();
  leases.start();
  return {
    name,
    heartbeat,
    leases,
    ownership,
    async stop() {
      ownership.stop();
      leases.stop();
      await heartbeat.stop();
    },
  };
}
