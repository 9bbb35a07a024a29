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
