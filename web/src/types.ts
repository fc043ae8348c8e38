export type Role = "viewer" | "operator" | "approver" | "admin";

export interface Alternative {
  action: string;
  description: string;
  monthlySavingsUsd: number | null;
  risk: number;
  targetType?: string;
}

export interface Recommendation {
  id: string;
  resourceId: string;
  service: string;
  finding: string;
  action: string;
  targetType?: string;
  accountId?: string;
  region?: string;
  owner?: string;
  tags?: Record<string, string>;
  currentMonthlyCostUsd?: number | null;
  monthlySavingsUsd: number | null;
  savingsPercent?: number;
  confidence: number;
  risk: number;
  reason: string;
  alternatives: Alternative[];
  dependencies: string[];
  thresholdVersion?: number;
  utilizationScore?: number;
  createdAt?: string;
}

export interface Decision {
  actor: string;
  decidedAt: string;
  event: string;
  from: string;
  to: string;
  reason?: string | null;
  requestId: string;
}

export interface ApprovalRequest {
  id: string;
  status: string;
  createdAt: string;
  updatedAt: string;
  expiresAt?: string;
  cycleId?: string;
  requestedBy?: string;
  version: number;
  recommendation: Recommendation;
  [k: string]: unknown;
}

export interface Page<T> {
  items: T[];
  nextToken: string | null;
}

export interface AuditEntry {
  id: string;
  at: string;
  actor: string;
  action: string;
  entityType: string;
  entityId: string;
  outcome?: string;
  reason?: string;
  correlationId?: string;
  preState?: unknown;
  postState?: unknown;
}

export interface Condition {
  metric: string;
  operator: string;
  statistic: string;
  value: number;
  upper?: number;
}

export interface Rule {
  id: string;
  service: string;
  finding: string;
  action: string;
  aggregation?: string;
  conditions: Condition[];
  description?: string;
  lookbackDays: number;
  [k: string]: unknown;
}

export interface ThresholdSet {
  version: number;
  createdAt: string;
  createdBy: string;
  note?: string;
  rules: Rule[];
}

export interface PolicyMatch {
  services?: string[];
  actions?: string[];
  maxRisk: number;
  minSavingsUsd?: number;
  maxSavingsUsd?: number;
  tags?: Record<string, string>;
  excludeTags?: Record<string, string>;
  accounts?: string[];
}

export interface Policy {
  id: string;
  version: number;
  description?: string;
  enabled: boolean;
  dryRun: boolean;
  match: PolicyMatch;
  window: string[];
  updatedBy: string;
  updatedAt: string;
}
