export { NvmfError, type NvmfErrorCode } from './errors';
export {
  Target,
  type TargetOptions,
  type RdmaTargetOptions,
  type TargetState,
  type PollMode,
  type ReactorInfo,
  type BdevOptions,
  type BdevInfo,
  type SubsystemOptions,
  type PollGroupStats,
  type ListenAddress,
  resources,
  type BdevFaults,
  type FaultStats,
  type TargetResources,
  type ProcessResources,
} from './target';
export { Subsystem, type NamespaceOptions, type HostOptions, type HostKeys, type NamespaceInfo } from './subsystem';
export {
  connect,
  discover,
  DISCOVERY_NQN,
  HostController,
  type HostConnectOptions,
  type ControllerInfo,
  type ControllerIdentify,
  type NamespaceIdentify,
  type DiscoveryEntry,
  type DiscoverOptions,
  type LogPageOptions,
  type IoOptions,
  type RawOptions,
  type RawCompletion,
  type HostDhchapKeys,
} from './host';
export { perf, type PerfOptions, type PerfResult } from './perf';
export {
  generateDhchapKey,
  parseDhchapKey,
  readDhchapKeyFile,
  type DhchapDigest,
  type DhchapDhGroup,
  type DhchapKeyInput,
  type DhchapKeyInfo,
  type GenerateDhchapKeyOptions,
  type TargetAuthOptions,
} from './auth';
