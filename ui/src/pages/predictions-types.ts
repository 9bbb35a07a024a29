/** What GET /v1/predictions/model, POST /v1/predictions/validate and GET /v1/predictions/customers/:id answer. */
export interface Validation {
  model: string; calibrationEnd: string; holdoutEnd: string; customers: number; holdoutDays: number;
  predictedPurchases: number; actualPurchases: number; meanAbsoluteError: number; churnDays: number;
  churnAuc: number; recencyAuc: number; brier: number; baseRateBrier: number; churnRate: number; meanChurnRisk: number;
  churnModel: string; topShare: number; topChurned: number; topChurnedByRecency: number;
  calibration: Array<{ decile: number; customers: number; predicted: number; observed: number }>;
}
export interface ModelView {
  id: string; model: 'mbg-nbd' | 'bg-nbd'; asOf: string; timeUnit: string; customers: number; fittedAt: string;
  params: { r: number; alpha: number; a: number; b: number }; logLikelihood: number;
  churn: {
    model: 'logistic-regression' | 'rule'; rule: 'recency' | 'btyd' | null; description: string; reason: string | null; flagged: boolean;
    trainedOn: { cutoff: string; customers: number; churnRate: number; rows?: number; windows?: Array<{ cutoff: string; customers: number; churnRate: number }> } | null;
    weights: Array<{ feature: string; weight: number }>;
    distribution: Array<{ from: number; to: number; customers: number }> | null;
  };
  likelyToChurn: { definition: string; churnRiskFrom: string; fallback: boolean };
  validation: Validation | null;
  scoring: { status: 'done' | 'queued'; customers?: number; scoredAt?: string };
}
export interface CustomerChurn {
  externalId: string; asOf: string; churnRisk: number | null; pAlive: number | null; expectedPurchases90d: number | null;
  churnModel: string; rule: string | null; flagged: boolean;
  factors: Array<{ feature: string; label: string; value: number; shown: string; weight: number; direction: 'raises' | 'lowers' }>;
}
