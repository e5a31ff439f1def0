package hfinit

// corpus is the text the tokenizer's merges are learned from: plain English about the
// kind of data the trainer sees (instructions, answers, numbers, a little code). It
// was written for this package.
const corpus = `The model reads a prompt and writes an answer. The answer should be short, correct and
kind. When the question is about numbers, the answer shows the steps: 12 plus 30 is 42, 7
times 8 is 56, and 100 minus 1 is 99. When the question is about words, the answer explains
what the words mean and gives an example.

Instruction: Write a sentence about the weather.
Response: The weather today is cool and clear, with a light wind from the west.

Instruction: Name three colors.
Response: Red, green and blue are three colors.

Instruction: Is the sentence positive or negative? "The film was a delight from start to end."
Response: positive

Instruction: Is the sentence positive or negative? "The service was slow and the food was cold."
Response: negative

Question: Which is heavier, a kilogram of stone or a kilogram of feathers?
Answer: They weigh the same; each is one kilogram.

Question: What comes next in the sequence 2, 4, 6, 8?
Answer: The next number is 10, because each number is two more than the one before.

The training loop takes a batch, runs the forward pass, computes the loss, runs the
backward pass and updates the parameters. The learning rate warms up and then decays.
Every few hundred steps the trainer saves a checkpoint, so that a run can resume where it
stopped. The loss goes down as the model learns, and the evaluation score goes up.

In the garden there are apple trees, pear trees and a small pond. The children play by the
pond in the morning and read under the trees in the afternoon. In the evening the family
eats together and talks about the day.

func add(a, b int) int { return a + b }
for i := 0; i < 10; i++ { total += i }
if err != nil { return err }

The the the and and and of of of to to to in in in is is is that that that it it it for for
for with with with as as as on on on was was was be be be by by by this this this are are
are from from from at at at or or or an an an not not not but but but we we we they they
they you you you he he he she she she his his his her her her one one one two two two
three three three four four four five five five six six six seven seven seven eight eight
eight nine nine nine ten ten ten answer answer question question instruction instruction
response response model model train train training training data data loss loss step step
`
