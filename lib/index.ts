export { NvmfError, type NvmfErrorCode } from './errors';
export { Target, type TargetOptions, type TargetState, type PollMode, type ReactorInfo } from './target';
