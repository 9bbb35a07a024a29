/** The test suite's own database and Redis prefix; the machine's real services, never mocks. */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/hark_test';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const OPERATOR_TOKEN = 'test-operator-token-0123456789';
/** A Twilio account for the tests' stand-in (hark itself has no default one). */
export const TEST_TWILIO_SID = 'AC' + '0'.repeat(31) + '1';
export const TEST_TWILIO_TOKEN = 'test-twilio-auth-token-0123456789';
