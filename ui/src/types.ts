/** Response shapes read from API.md (the OpenAPI document does not describe responses yet). */
export type Node = Record<string, unknown>;
export interface Page<T> { data: T[]; nextCursor: string | null }
export interface FieldInfo { name: string; type: string; ops: string[]; description?: string; source?: string }
export interface PresetInfo { name: string; description?: string; definition?: Node }
export interface Segment { id: string; name: string; definition?: Node | null; count?: number }
export interface CustomerSample { externalId: string; email?: string | null; firstName?: string | null; lastName?: string | null; city?: string | null }
export interface Preview { count: number; sample: CustomerSample[] }
export interface Template { id: string; name: string; channel: 'email' | 'sms'; subject?: string | null; body: string; format?: 'mjml' | 'html' | 'text' }
export interface EmailPreview { subject: string; html: string; text: string }
export interface SmsPreview { text: string; encoding: string; segments: number }
export interface Campaign {
  id: string; name: string; channel: 'email' | 'sms'; status: string; templateId: string; segmentIds: string[];
  scheduledAt?: string | null; holdoutPercent?: number;
  counts?: { targeted?: number; heldOut?: number; queued?: number; sent?: number; delivered?: number; failed?: number; suppressed?: Record<string, number> };
  /** Why its messages do not go out (SMTP refused, provider down): empty when all is well. */
  problems?: CampaignProblem[];
}
export interface ReportRow { group: string; targeted: number; sent: number; delivered: number; opened: number; clicked: number; converted: number; revenue: number }
export interface Report {
  groupBy: string; rows: ReportRow[];
  holdout?: { customers: number; converted: number; conversionRate: number | null; revenue: number; revenuePerCustomer: number | null } | null;
  lift?: { conversionRate: number | null; ci95: [number, number] | null } | null;
  /** Every purchase recorded before this time is counted (null before attribution first ran). */
  attributedThrough?: string | null;
}
export interface Automation { id: string; name: string; enabled: boolean; trigger: Record<string, unknown>; steps: Array<Record<string, unknown>>; counts?: unknown }
export interface Settings {
  fromEmail: string | null; fromName: string | null; replyTo: string | null; smsFrom: string | null; postalAddress: string | null;
  timezone: string; frequencyCap: { maxMessages: number; perDays: number } | null; quietHours: { start: string; end: string } | null;
}
export interface ApiKey { id: string; name: string; scope: string; createdAt?: string }
export interface Overview {
  customers: number; currency: string | null; timezone: string;
  purchasesPerDay: Array<{ day: string; count: number; revenue: number }>;
  campaigns: Record<string, number>; automations: { enabled: number; disabled: number };
}
export interface CampaignProblem { code: string; message: string; since: string | null; messages: number }
export interface InboxMessage {
  id: string; messageId: string | null; test: boolean; channel: 'email' | 'sms'; to: string; from: string;
  subject: string | null; html: string | null; text: string; headers: Record<string, string>;
  encoding?: string | null; segments?: number | null; receivedAt: string;
}
export interface TestSendResult { to: string; channel: 'email' | 'sms'; status: 'sent' | 'failed'; error: string | null }
export interface ImportJob {
  id: string; kind: 'customers' | 'purchases'; status: 'queued' | 'running' | 'done' | 'failed';
  rowsRead: number; accepted: number; duplicates: number; rejected: number; progress: number;
  errors: Array<{ line: number; error: string }>; failure: string | null; createdAt: string; startedAt: string | null; finishedAt: string | null;
}
export interface CustomerStats {
  purchaseCount: number; totalSpent: number; avgOrderValue: number | null; firstPurchaseAt: string | null; lastPurchaseAt: string | null;
  daysSinceLastPurchase: number | null; avgDaysBetweenPurchases: number | null; expectedNextPurchaseAt: string | null; purchases90d: number; spent90d: number;
  topCategory: string | null; pAlive: number | null; churnRisk: number | null; expectedPurchases90d: number | null; predictedSpend365d: number | null; leadScore: number;
}
export interface Customer {
  id: string; externalId: string | null; email: string | null; phone: string | null; firstName: string | null; lastName: string | null;
  city: string | null; country: string | null; emailConsent: string | null; smsConsent: string | null; createdAt: string;
  suppressed?: { email: boolean; sms: boolean }; stats?: CustomerStats;
  summary?: { purchaseCount: number; totalSpent: number; lastPurchaseAt: string | null; leadScore: number; churnRisk: number | null };
}
export type TimelineEntry = { at: string; type: 'purchase' | 'refund' | 'event' | 'message' | 'consent'; id: string } & Record<string, any>;
