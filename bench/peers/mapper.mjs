// The bench's requests built in code, for `batchpipe prepare --mapper`: the same body the template
// makes (the model comes from --model).
const SYSTEM =
  'Classify the sentiment of the product review as positive, negative or neutral. Reply with one word.';

export default (values) => ({
  messages: [
    { role: 'system', content: SYSTEM },
    { role: 'user', content: `Title: ${values.title}\nReview: ${values.review}` },
  ],
});
