/** The few HTML pages people see after clicking an unsubscribe link. No scripts, no cookies. */
const page = (title: string, body: string) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>${title}</title>
<style>body{font-family:system-ui,Arial,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}
button{font-size:1rem;padding:.6rem 1.2rem;cursor:pointer}</style></head>
<body>${body}</body></html>`;

const escapeAttr = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** GET shows this; only the POST (the button, or a mail client's one-click) unsubscribes. */
export const unsubscribePage = (action: string) =>
  page(
    'Unsubscribe',
    `<h1>Unsubscribe</h1><p>Stop receiving these messages?</p>
<form method="post" action="${escapeAttr(action)}"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>`,
  );

export const confirmPage = () => page('Unsubscribed', '<h1>You are unsubscribed</h1><p>You will not receive these messages any more.</p>');

export const invalidPage = () => page('Link not valid', '<h1>This link is not valid</h1><p>It may have expired. Use the unsubscribe link of a more recent message.</p>');
